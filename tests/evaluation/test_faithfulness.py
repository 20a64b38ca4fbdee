"""Explanation metrics on hand-made lists: claims read from reasons, checked against the catalog and
features; leaks; distinct citations; the reason sample; wired into the LLM rows of Protocol A."""

import numpy as np
import pytest

from promptrec.data import Catalog, Item
from promptrec.evaluation.beyond import GroupContext
from promptrec.evaluation.faithfulness import ClaimReader, explanation_metrics, leaks, sample_reasons
from promptrec.evaluation.rerank_eval import RerankRecord, rerank_row, shown_list
from promptrec.types import ItemFeatures, Recommendation, RecommendationList


@pytest.fixture
def catalog():
    rows = [
        ("1", "Heat (1995)", "Action, Crime, Thriller", "heist, al pacino"),
        ("2", "Ronin (1998)", "Action, Crime, Thriller", "heist, car chase"),
        ("3", "Toy Story (1995)", "Adventure, Animation, Children, Comedy", "pixar, friendship"),
        ("4", "Finding Nemo (2003)", "Adventure, Animation, Children, Comedy", "pixar, ocean"),
        ("5", "Blair Witch Project, The (1999)", "Horror, Thriller", "found footage"),
        ("6", "War Games (1983)", "Drama, Sci-Fi, Thriller", "hackers"),
        ("296", "Pulp Fiction (1994)", "Comedy, Crime, Drama, Thriller", "quentin tarantino"),
    ]
    return Catalog(Item(item_id=i, title=t, fields={"genres": g, "tags": tags}) for i, t, g, tags in rows)


def rec(item, reason, cited, rank=1, by="llm", title=None):
    return Recommendation(item_id=item, title=title or item, rank=rank, score=0.0, explanation=reason,
                          cited_history=cited, explained_by=by)


def answer(*items, user="u"):
    return RecommendationList(user_id=user, items=list(items), ordered_by="llm_rerank")


def test_claims_are_confirmed_for_the_item_and_its_cited_item(catalog):
    reader = ClaimReader(catalog)
    good = reader.verdict("2", "Like Heat, a tense crime thriller about a heist.", ["1"])
    # "tense" is a tone word that Thriller implies: confirmed by the genre of both
    assert [c["term"] for c in good["claims"]] == ["crime", "thriller", "heist", "tense"] and good["faithful"] is True
    scary = reader.verdict("2", "Scary, like Blair Witch Project.", ["5"])  # Ronin is no horror
    assert scary["claims"] == [{"kind": "theme", "term": "scary", "confirmed": False}] and scary["genre_faithful"] is None
    false = reader.verdict("5", "It shares the genre of drama with Pulp Fiction.", ["296"])
    assert false["faithful"] is False and false["claims"] == [{"kind": "genre", "term": "drama", "confirmed": False}]
    half = reader.verdict("3", "An animated comedy, like Heat.", ["1"])  # true of the item, not of the cited one
    assert half["faithful"] is False
    assert reader.verdict("3", "You will surely enjoy this one.", ["4"])["faithful"] is None  # no claim
    assert reader.verdict("4", "Another funny Pixar adventure for kids.", [])["faithful"] is True  # no citation: item alone


def test_a_phrase_of_genre_words_is_confirmed_by_the_genres():
    catalog = Catalog([Item(item_id="1", title="20 Dates (1998)", fields={"genres": "Comedy, Romance", "tags": ""}),
                       Item(item_id="2", title="Big Daddy (1999)", fields={"genres": "Comedy", "tags": ""}),
                       Item(item_id="3", title="Notting Hill (1999)", fields={"genres": "Comedy, Romance",
                                                                              "tags": "romantic comedy"})])
    reader = ClaimReader(catalog)
    assert reader.verdict("3", "Like 20 Dates, it is a romantic comedy.", ["1"])["faithful"] is True
    assert reader.verdict("2", "Like 20 Dates, it is a romantic comedy.", ["1"])["faithful"] is False  # no romance


def test_words_of_the_cited_titles_are_not_claims(catalog):
    reader = ClaimReader(catalog)
    verdict = reader.verdict("2", "Fans of War Games will like this thriller.", ["6"])
    assert [c["term"] for c in verdict["claims"]] == ["thriller"] and verdict["faithful"] is True


def test_feature_themes_are_claims_and_confirm_them(catalog):
    features = {i: ItemFeatures(themes=["loyalty", "revenge"], mood="tense", audience="adults", description="x")
                for i in ("1", "2")}
    reader = ClaimReader(catalog, features)
    assert reader.verdict("2", "Loyalty and revenge, as in Heat.", ["1"])["faithful"] is True
    assert reader.verdict("3", "Loyalty again, as in Heat.", ["1"])["faithful"] is False  # Toy Story lacks it
    assert ClaimReader(catalog).verdict("2", "Loyalty and revenge, as in Heat.", ["1"])["faithful"] is None


def test_leaks_of_ids_and_prompt_wording():
    assert leaks("C12 is a great pick") == "prompt id 'C12'"
    assert leaks("Shares a theme with the related history item.") == "prompt wording 'history item'"
    assert leaks("Like item 296, it is a crime film.").startswith("id")
    assert leaks("Like 296, it is a crime film.", ["296"]) == "item id '296'"
    assert leaks("A 1995 crime film like Heat.", ["1995"]) is None  # a year is not an id
    assert leaks("A tense crime film, like Heat.", ["2", "1"]) is None


def test_explanation_metrics_of_hand_made_lists(catalog):
    first = answer(rec("2", "A crime thriller like Heat.", ["1"]),
                   rec("4", "An animated adventure like Toy Story.", ["3"], 2),
                   rec("5", "Shares drama with Pulp Fiction.", ["296"], 3),
                   rec("6", "From the history item C2.", ["1"], 4),
                   rec("3", "", ["1"], 5, by="evidence"))
    second = answer(rec("2", "Another one like Heat, trust me.", ["1"]), rec("4", "", ["1"], 2, by="evidence"), user="v")
    out = explanation_metrics([first, second], catalog, history_lengths=[5, 2])
    assert out["reasons"] == 5
    assert out["claim_rate"] == pytest.approx(3 / 5)  # the leak and "trust me" state no genre or theme
    assert out["faithfulness"] == pytest.approx(2 / 3) and out["claims_confirmed_rate"] == pytest.approx(4 / 5)
    assert out["leak_rate"] == pytest.approx(1 / 5)
    assert out["genre_faithfulness"] == pytest.approx(2 / 3)
    assert out["distinct_cited_per_list"] == pytest.approx((3 + 1) / 2)  # {1, 3, 296} and {1}
    assert out["distinct_cited_llm_per_list"] == pytest.approx((3 + 1) / 2)
    assert out["lists_citing_3_rate"] == 1.0  # only the first user has >= 3 history items
    assert [p["faithful"] for p in out["per_list"]] == [2, 0]


def test_the_reason_sample_is_seeded_and_holds_verdicts(catalog):
    lists = [answer(*[rec("2", f"A crime thriller like Heat ({n}).", ["1"], n + 1) for n in range(8)], user=str(u))
             for u in range(3)]
    a = sample_reasons(lists, catalog, n=10, seed=1)
    assert len(a) == 10 and a == sample_reasons(lists, catalog, n=10, seed=1)
    assert [s["reason"] for s in a] != [s["reason"] for s in sample_reasons(lists, catalog, n=10, seed=2)]
    assert a[0]["cited"] == ["Heat (1995)"] and a[0]["faithful"] is True
    assert sample_reasons([answer(rec("2", "", ["1"], by="evidence"))], catalog) == []


def record(user, target, reasons, cited, valid=True):
    fused = ["2", "4", "5", "6"]
    return RerankRecord(user=user, stage="test", target=target, fused=fused, fused_rank=float(fused.index(target)),
                        llm_order=fused[::-1] if valid else [], valid=valid, llm_explained=cited, reasons=reasons,
                        evidence={i: "1" for i in fused}, seconds=1.0 + len(user), history_length=4)


def test_llm_rows_report_explanation_metrics_with_intervals(catalog):
    records = [record("a", "6", {"2": "A crime thriller like Heat.", "5": "Drama, like Pulp Fiction."},
                      {"2": ["1"], "5": ["296"]}),
               record("b", "2", {"4": "An animated comedy like Toy Story."}, {"4": ["3"]}),
               record("c", "4", {}, {}, valid=False)]
    shown = shown_list(records[0], 1.0, 3, catalog)
    assert [r.item_id for r in shown.items] == ["6", "5", "4"] and shown.items[1].explained_by == "llm"
    assert shown.items[0].explained_by == "evidence" and shown.items[0].cited_history == ["1"]
    index = {i.item_id: n for n, i in enumerate(catalog)}
    ctx = GroupContext.for_stage(np.arange(len(index), dtype=float), np.array([1.0, 5, 9]), 0)
    row = rerank_row(records, 1.0, [0, 1, 2], index, ctx, catalog, k=3)
    m = row["metrics"]
    assert m["reasons"] == 2 and m["faithfulness"] == 0.5 and m["claim_rate"] == 1.0  # "2" is not shown at k=3
    for name in ("N@10", "faithfulness", "grounding_rate", "fallback_rate", "latency_p50_s", "gini"):
        assert row["intervals"][name] is not None, name
    assert m["fallback_rate"] == pytest.approx(1 / 3) and row["intervals"]["fallback_rate"][0] == 0.0
    assert {s["item"] for s in row["reason_sample"]} == {"5", "4"}
    assert set(row["groups"]) == {"target_tier", "activity"}
