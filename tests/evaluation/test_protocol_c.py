"""Protocol C: requests written from the target without naming it, and the whole path on a small folder."""

import json

import pytest

from promptrec.data import Item
from promptrec.evaluation.requests import RequestWriter, attributes, leak, templated, title_words, vague
from promptrec.llm import LLMCache, LLMClient, ScriptedLLM

import numpy as np

HEAT = Item(item_id="6", title="Heat (1995)", fields={"genres": "Action|Crime|Thriller",
                                                      "tags": "heist, Al Pacino, heat wave, los angeles"})
ALIEN = Item(item_id="1214", title="Alien (1979)", fields={"genres": "Horror, Sci-Fi", "tags": "space, aliens, creepy"})


def test_title_words_and_leaks():
    assert title_words("Matrix, The (1999)") == {"matrix"}
    assert title_words("Star Wars: Episode IV - A New Hope (1977)") == {"star", "wars", "episode", "new", "hope"}
    assert leak("a tense heist movie in los angeles", HEAT) is None
    assert "heat" in leak("something like heat", HEAT)
    assert leak("a crime film from 1995", HEAT) == "names an exact year"
    war = Item(item_id="1", title="War (2007)", fields={"genres": "War"})
    assert leak("a war movie", war, {"war"}) is None  # a genre word may be said even when it is in the title


def test_attributes_leave_out_tags_that_give_the_title_away():
    attrs = attributes(HEAT, None)
    assert attrs.genres == ["Action", "Crime", "Thriller"] and attrs.decade == 1990
    assert "heat wave" not in attrs.tags and attrs.tags == ["heist", "Al Pacino", "los angeles"]
    assert templated(attrs) == "a action, crime, thriller movie from the 1990s, about heist, Al Pacino, los angeles"
    assert vague(attrs, np.random.default_rng(0)) in {"a action movie", "a crime movie", "a thriller movie"}


def test_writer_rejects_leaky_model_requests_and_reuses_its_file(tmp_path):
    backend = ScriptedLLM({"request": "I want something like Alien but newer"},
                          {"request": "a creepy space horror film from the late seventies"})
    path = tmp_path / "requests.jsonl"
    writer = RequestWriter(path, LLMClient(backend, LLMCache(None)))
    pairs = [("test", "u1", ALIEN), ("test", "u2", HEAT)]
    first = writer.write(pairs, ["templated", "model"])
    by = {(r.user, r.variant): r for r in first}
    assert by[("u1", "model")].text == by[("u1", "templated")].text  # the leaky request was replaced
    assert "alien" in by[("u1", "model")].rejected
    assert by[("u2", "model")].text == "a creepy space horror film from the late seventies"
    assert by[("u2", "model")].rejected is None
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["target"] for line in lines)
    again = RequestWriter(path, LLMClient(ScriptedLLM(), LLMCache(None))).write(pairs, ["templated", "model"])
    assert [r.text for r in again] == [r.text for r in first]  # reused: no model call (the script is empty)


@pytest.mark.integration
def test_protocol_c_on_a_small_folder(tmp_path, tiny):
    """The whole Protocol C path on a synthetic folder: requests written and reused, a steered table."""
    from promptrec.evaluation.conversational import ProtocolCConfig, format_beyond, format_table, run_protocol_c
    from promptrec.settings import Settings
    from promptrec.testing import with_users, write_dataset_folder

    write_dataset_folder(with_users(tiny), tmp_path / "shop")  # with a users file: demographic groups
    settings = Settings(dataset=str(tmp_path / "shop"), state_dir=tmp_path / "state")
    config = ProtocolCConfig(users=12, requests_dir=tmp_path / "requests", request_weights=[0.5, 2.0])
    payload = run_protocol_c(config, settings, say=lambda line: None)
    rows = {(r["stage"], r["variant"]): r for r in payload["rows"]}
    assert set(rows) == {(s, v) for s in ("valid", "test") for v in ("templated", "vague")}
    assert all(r["violations"] == 0 for r in rows.values())
    assert all(r["steered"]["users"] == 12 for r in rows.values())
    templ = rows[("test", "templated")]
    assert templ["genre_recall"] == 1.0 and templ["target_allowed"] == 1.0
    assert templ["steered"]["N@10"] >= templ["history_only"]["N@10"]
    assert payload["meta"]["request_weight"]["chosen"] in (0.5, 2.0)
    assert "| test | templated | 12 |" in format_table(payload)
    for row in rows.values():  # every figure carries its interval, which holds the figure
        for side in ("steered", "history_only"):
            figures = row[side]
            for name in ("N@10", "R@10", "gini", "long_tail_share", "avg_pop"):
                low, high = figures["intervals"][name]
                assert low <= figures[name] + 1e-9 and figures[name] <= high + 1e-9, (name, figures[name], low, high)
            assert sum(g["users"] for g in figures["groups"]["target_tier"].values()) == 12
            assert sum(g["users"] for g in figures["groups"]["attribute:gender"].values()) == 12
        assert row["intervals"]["violations"] == [0.0, 0.0]
    beyond = format_beyond(payload)
    assert "N@10 head with request" in beyond and "N@10 by gender (users file)" in beyond
    files = list((tmp_path / "requests").glob("*.jsonl"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 12 * 2 * 2
    assert not any(p.name != "shop" for p in (tmp_path / "shop").iterdir() if p.is_dir())  # nothing in the data folder
