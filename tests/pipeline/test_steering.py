"""A typed request changes the list: its own retrieval sources, hard filters never violated, chat refinement."""

import pytest

from promptrec import Recommender
from promptrec.chat import ChatSession
from promptrec.intent import item_genres, item_year
from promptrec.retrieval.store import make_client


@pytest.fixture
def rec(settings, tiny, hash_embedder):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0},
                                                "min_item_support": 1, "params": {"ease": {"lambda_": 10.0}}})
    settings = settings.model_copy(update={"fusion": fusion})
    return Recommender(settings, dataset=tiny, llm=False, embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))


def genres(rec, result) -> list[set[str]]:
    return [item_genres(rec.dataset.catalog[r.item_id]) for r in result.items]


def test_a_request_for_another_genre_changes_the_list_and_filters_it(rec):
    plain = rec.recommend("1", k=5)  # user 1 mostly watches space adventures
    assert sum("space" in g for g in genres(rec, plain)) >= 3
    steered = rec.recommend("1", k=5, request="a crime thriller")
    assert steered.understood == "understood: genres crime, thriller"  # the catalog's own spelling
    assert len(steered.items) == 5 and all({"crime", "thriller"} <= g for g in genres(rec, steered))
    assert steered.intent["genres"] == ["crime", "thriller"]
    assert {r.item_id for r in steered.items} != {r.item_id for r in plain.items}


def test_exclusions_and_years_are_never_violated(rec):
    result = rec.recommend("2", k=10, request="no comedy, nothing before 1993")
    assert result.items, "some items satisfy the request"
    catalog = rec.dataset.catalog
    assert all("comedy" not in g for g in genres(rec, result))
    assert all(item_year(catalog[r.item_id]) >= 1993 for r in result.items)


def test_an_anchor_pulls_in_what_people_chose_with_it(rec):
    plain = rec.recommend("1", k=5)
    anchored = rec.recommend("1", k=5, request="more like Romantic Comedy 3 (1992)")
    assert anchored.intent["anchors"] == ["112"]
    assert [r.item_id for r in anchored.items] != [r.item_id for r in plain.items]
    assert sum("romantic" in g for g in genres(rec, anchored)) > sum("romantic" in g for g in genres(rec, plain))


def test_a_request_that_nothing_satisfies_shows_nothing_rather_than_breaking_it(rec):
    result = rec.recommend("1", k=5, request="a western")  # no western in this catalog: no genre filter, text only
    assert len(result.items) == 5
    empty = rec.recommend("1", k=5, request="a crime thriller from the 1950s")
    assert empty.items == [] and "from 1950 to 1959" in empty.understood


def test_chat_follow_up_refines_the_previous_request(rec):
    session = ChatSession(rec, k=4)
    session.handle("/user 4")
    first = session.handle("a romantic comedy")
    assert "understood: genres romantic, comedy; mood: romantic" in first.text  # the catalog's own genre names
    shown_years = [item_year(rec.dataset.catalog[r.item_id]) for r in first.recommendations.items]
    older = session.handle("no, older")
    assert "genres romantic, comedy" in older.text and "up to" in older.text
    bound = session.intent.year_max
    assert bound is not None and bound < sorted(shown_years)[len(shown_years) // 2]
    assert all("comedy" in g for g in genres(rec, older.recommendations))
    assert all(item_year(rec.dataset.catalog[r.item_id]) <= bound for r in older.recommendations.items)
    fresh = session.handle("a crime thriller")  # not a follow-up: starts over
    assert "comedy" not in fresh.text and session.intent.year_max is None


def test_evidence_explanations_speak_to_the_request(rec):
    steered = rec.recommend("1", k=3, request="a crime thriller from the 90s")
    for r in steered.items:
        year = item_year(rec.dataset.catalog[r.item_id])
        assert r.explanation.startswith(f"Matches your request (crime; thriller; from {year}).")
    anchored = rec.recommend("1", k=3, request="more like Romantic Comedy 3 (1992)")
    assert any("chosen by people who chose Romantic Comedy 3 (1992)" in r.explanation for r in anchored.items)
    plain = rec.recommend("1", k=3)
    assert not any(r.explanation.startswith("Matches your request") for r in plain.items)
