import math

import ir_measures
import numpy as np
import pytest
from ir_measures import RR, P, R, nDCG

from promptrec.evaluation.metrics import (
    catalog_coverage,
    evaluate_rankings,
    f1_at_k,
    mean_popularity_rank,
    mrr_at_k,
    ndcg_at_k,
    popularity_ranks,
    precision_at_k,
    rank_of_target,
    recall_at_k,
    top_k,
)

RANKS = [0, 1, 4, 9, 10, np.inf]


def test_per_user_metrics_exact_values():
    assert recall_at_k(RANKS, 5).tolist() == [1, 1, 1, 0, 0, 0]
    assert recall_at_k(RANKS, 10).tolist() == [1, 1, 1, 1, 0, 0]
    np.testing.assert_allclose(
        ndcg_at_k(RANKS, 5), [1.0, 1 / math.log2(3), 1 / math.log2(6), 0, 0, 0]
    )
    np.testing.assert_allclose(mrr_at_k(RANKS, 10), [1.0, 0.5, 0.2, 0.1, 0, 0])
    np.testing.assert_allclose(precision_at_k(RANKS, 5), [0.2, 0.2, 0.2, 0, 0, 0])
    np.testing.assert_allclose(f1_at_k(RANKS, 5), [1 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    assert ndcg_at_k(None, 10) == 0.0 and recall_at_k(None, 1) == 0.0
    assert recall_at_k(0, 1) == 1.0 and ndcg_at_k(2, 3) == pytest.approx(0.5)
    np.testing.assert_allclose(mrr_at_k([None, 3], 5), [0.0, 0.25])
    with pytest.raises(ValueError):
        recall_at_k(RANKS, 0)


def test_rank_of_target_tie_rule_and_exclusion():
    scores = np.array([0.5, 0.9, 0.5, 0.1])
    # ties: the lower item index goes first
    assert rank_of_target(scores, 2).tolist() == [2.0]
    assert rank_of_target(scores, 0).tolist() == [1.0]
    assert rank_of_target(scores, 2, exclude=[np.array([1])]).tolist() == [1.0]
    assert rank_of_target(scores, 1, exclude=[np.array([1])]).tolist() == [np.inf]
    with_nan = np.array([[np.nan, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert rank_of_target(with_nan, [0, 2]).tolist() == [np.inf, 2.0]
    assert rank_of_target(
        with_nan, [2, 2], exclude=[np.array([], int), np.array([0])]
    ).tolist() == [
        1.0,
        1.0,
    ]


def test_top_k_follows_the_same_order_as_rank_of_target():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(20, 15)).astype(float)  # many ties
    exclude = [rng.choice(15, size=3, replace=False) for _ in range(20)]
    lists = top_k(scores, 15, exclude)
    for u, recs in enumerate(lists):
        assert len(recs) == 12 and not set(recs) & set(exclude[u])
        ranks = [rank_of_target(scores[u], i, [exclude[u]])[0] for i in recs]
        assert ranks == list(range(12))
    assert [r.tolist() for r in top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), 2)] == [[1, 2]]


def test_coverage_and_popularity_rank():
    assert catalog_coverage([np.array([0, 1]), np.array([1, 2])], 10) == pytest.approx(0.3)
    assert popularity_ranks(np.array([5, 10, 5, 1])).tolist() == [2, 1, 3, 4]
    assert mean_popularity_rank([np.array([1, 3]), np.array([0])], np.array([5, 10, 5, 1])) == (
        pytest.approx(7 / 3)
    )


def test_evaluate_rankings_means():
    out = evaluate_rankings(
        RANKS,
        ks=(5,),
        rec_lists=[np.array([0, 1])],
        n_items=4,
        popularity_counts=np.array([3, 2, 1, 0]),
    )
    assert out["n_users"] == 6
    assert out["R@5"] == pytest.approx(0.5)
    assert out["MRR@5"] == pytest.approx((1 + 0.5 + 0.2) / 6)
    assert out["coverage"] == pytest.approx(0.5) and out["pop_rank"] == pytest.approx(1.5)
    assert set(evaluate_rankings(RANKS)) >= {
        f"{m}@{k}" for m in ("R", "N", "MRR") for k in (1, 5, 10, 20)
    }


@pytest.fixture(scope="module")
def fixture_run():
    """50 users, 40 items, distinct scores, random histories (some hide the target)."""
    rng = np.random.default_rng(7)
    scores = np.stack([rng.permutation(40).astype(float) for _ in range(50)])
    target = rng.integers(0, 40, size=50)
    exclude = [rng.choice(40, size=rng.integers(0, 10), replace=False) for _ in range(50)]
    ranks = rank_of_target(scores, target, exclude)
    run = {
        f"q{u}": {f"d{i}": float(scores[u, i]) for i in range(40) if i not in set(exclude[u])}
        for u in range(50)
    }
    qrels = {f"q{u}": {f"d{target[u]}": 1} for u in range(50)}
    return ranks, run, qrels


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_matches_trec_eval_through_ir_measures(fixture_run, k):
    # ranx gives the same numbers but JIT-compiles for ~40 s on first use, so trec_eval it is
    ranks, run, qrels = fixture_run
    ours = evaluate_rankings(ranks, ks=(k,))
    theirs = ir_measures.calc_aggregate([nDCG @ k, R @ k, RR @ k, P @ k], qrels, run)
    assert ours[f"N@{k}"] == pytest.approx(theirs[nDCG @ k])
    assert ours[f"R@{k}"] == pytest.approx(theirs[R @ k])
    assert ours[f"MRR@{k}"] == pytest.approx(theirs[RR @ k])
    assert ours[f"P@{k}"] == pytest.approx(theirs[P @ k])
