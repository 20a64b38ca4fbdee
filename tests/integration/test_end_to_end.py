"""End to end with real components: the smallest packaged GGUF (SmolLM2-135M) in llama.cpp, the
MiniLM ONNX embedder, a persistent Chroma store, on a slice of the real ml-latest-small."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from promptrec import Recommender
from promptrec.cli import app
from promptrec.settings import Settings
from promptrec.testing import dataset_slice, write_dataset_folder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_slice(movielens):
    return dataset_slice(movielens, n_users=20, max_history=40)


def make_settings(state_dir) -> Settings:
    return Settings(
        state_dir=state_dir,
        llm={"model": "small", "n_ctx": 4096},
        fusion={"weights": {"embedding": 0.5, "ease": 1.0, "itemknn": 0.3}, "min_item_support": 1},
        rerank={"depth": 8, "llm_weight": 0.5},
        profile={"token_budget": 300},
        deadline_s=600.0,  # this tests caching: a busy CI machine must not turn the first run into a fallback
    )


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


def test_index_recommend_explain_and_rerun_from_cache(real_slice, state_dir):
    rec = Recommender(make_settings(state_dir), dataset=real_slice)
    report = rec.index(features=4)
    assert report["stored"] == len(real_slice.catalog)
    assert report["features"]["extracted"] + report["features"]["failed"] == 4
    assert rec.client.model_id.startswith("SmolLM2-135M-Instruct.Q4_1.gguf@")

    user = real_slice.interactions.users[0]
    history = set(real_slice.interactions.history(user))
    result = rec.recommend(user, k=5)
    assert len(result.items) == 5
    assert len({r.item_id for r in result.items}) == 5 and not {r.item_id for r in result.items} & history
    assert all(r.item_id in real_slice.catalog for r in result.items)
    for r in result.items:
        assert r.explanation.strip()
        assert set(r.cited_history) <= history
    grounded = [r for r in result.items if r.cited_history]
    assert len(grounded) >= 4  # every LLM explanation is grounded; evidence ones are when evidence exists
    assert result.ordered_by in ("llm_rerank", "fusion")
    assert result.fallback == (result.fallback_reason is not None)
    assert result.profile is not None and result.profile.history_tokens <= 300
    calls = rec.client.stats.calls
    assert calls >= 2  # profile + rerank at least

    again = Recommender(make_settings(state_dir), dataset=real_slice)
    rerun = again.recommend(user, k=5)
    assert again.client.stats.calls == 0 and again.client.stats.cache_hits >= 2
    assert rerun.items == result.items


def test_chat_through_the_real_cli_with_the_local_model(real_slice, tmp_path):
    folder = tmp_path / "slice"
    write_dataset_folder(real_slice, folder)
    user = real_slice.interactions.users[1]
    script = f"/user {user}\nsomething funny\nwhy #1\n/quit\n"
    env = {
        "PROMPTREC_STATE_DIR": str(tmp_path / "state"),
        "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1",
        "PROMPTREC_RERANK__DEPTH": "6",
        "PROMPTREC_PROFILE__TOKEN_BUDGET": "250",
        "PROMPTREC_DEADLINE_S": "600",
        "COLUMNS": "160",
    }
    result = CliRunner().invoke(app, ["--dataset", str(folder), "--model", "small", "chat", "--k", "3"],
                                input=script, env=env)
    assert result.exit_code == 0, result.output
    assert f"Now recommending for user {user}" in result.output
    assert "Request: something funny" in result.output
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in result.output
    assert "based on:" in result.output and result.output.rstrip().endswith("Bye.")
