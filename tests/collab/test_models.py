import math

import numpy as np
import scipy.sparse as sp

from promptrec.collab import (
    EASE,
    ItemKNN,
    LinearTransition,
    Popularity,
    TimeLocalPopularity,
    Transition,
    recency_weights,
)
from promptrec.collab.linear import next_item_design
from promptrec.collab.sequential import transition_counts
from promptrec.collab.testing import synthetic_interactions
from promptrec.evaluation.splits import protocol_a_split

DAY = 86_400
X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=float))


def test_recency_weights():
    np.testing.assert_allclose(recency_weights(4, 1.0), [1 / 8, 1 / 4, 1 / 2, 1])
    np.testing.assert_allclose(recency_weights(3, None), [1, 1, 1])
    np.testing.assert_allclose(recency_weights(3, 1.0, context=2), [0, 0.5, 1])
    assert recency_weights(0, 2.0).shape == (0,)


def test_popularity_counts_interactions():
    scores = Popularity().fit(X).score([np.array([0]), np.array([], dtype=int)])
    np.testing.assert_array_equal(scores, [[3, 2, 2], [3, 2, 2]])


def test_itemknn_cosine_by_hand():
    knn = ItemKNN().fit(X)
    np.testing.assert_allclose(knn.score_one(np.array([1])), [2 / math.sqrt(6), 0, 0.5])
    np.testing.assert_allclose(knn.score_one(np.array([1, 2])), [4 / math.sqrt(6), 0.5, 0.5])
    pruned = ItemKNN(neighbors=1).fit(X)
    np.testing.assert_allclose(pruned.score_one(np.array([1])), [2 / math.sqrt(6), 0, 0])
    recent = ItemKNN(half_life=1.0).fit(X)
    np.testing.assert_allclose(
        recent.contributions(np.array([1, 2]), 0), [1 / math.sqrt(6), 2 / math.sqrt(6)]
    )


def test_ease_columns_are_ridge_regressions_on_the_other_items():
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 6)) < 0.4).astype(float)
    lam = 3.0
    weights = EASE(lambda_=lam).fit(sp.csr_matrix(dense)).similarity_
    assert np.all(np.diag(weights) == 0)
    for j in range(6):
        others = [i for i in range(6) if i != j]
        a = dense[:, others]
        ridge = np.linalg.solve(a.T @ a + lam * np.eye(5), a.T @ dense[:, j])
        np.testing.assert_allclose(weights[others, j], ridge, atol=1e-10)


def test_transition_counts_by_hand():
    seqs = [np.array([0, 1, 2])]
    counts = transition_counts(seqs, 3, window=2, distance_decay=0.5).toarray()
    np.testing.assert_allclose(counts, [[0, 1, 0.5], [0, 0, 1], [0, 0, 0]])
    both = transition_counts(seqs, 3, window=2, distance_decay=0.5, backward_weight=1.0).toarray()
    np.testing.assert_allclose(both, [[0, 1, 0.5], [1, 0, 1], [0.5, 1, 0]])
    gap = transition_counts(seqs, 3, 2, 0.5, times=[np.array([0, 10, 100])], max_gap_seconds=50)
    np.testing.assert_allclose(gap.toarray(), [[0, 1, 0], [0, 0, 0], [0, 0, 0]])


def test_transition_predicts_what_follows_not_what_precedes():
    seqs = [np.array([0, 1, 2]), np.array([0, 1, 2]), np.array([3, 1, 4])]
    model = Transition(window=1, half_life=1.0).fit(sp.csr_matrix((3, 5)), seqs)
    np.testing.assert_allclose(model.score_one(np.array([1])), [0, 0, 2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(model.score_one(np.array([0])), [0, 1, 0, 0, 0])
    # the most recent item dominates with a short half-life
    scores = model.score_one(np.array([1, 0]))
    assert scores[1] > scores[2]


def test_time_local_popularity_kernel():
    seqs = [np.array([0]), np.array([1]), np.array([1])]
    times = [np.array([0]), np.array([10 * DAY]), np.array([20 * DAY])]
    model = TimeLocalPopularity(bandwidth_days=10.0).fit(sp.csr_matrix((3, 2)), seqs, times)
    np.testing.assert_allclose(
        model.score([np.array([0])], [np.array([0])]), [[1, math.exp(-1) + math.exp(-2)]]
    )
    np.testing.assert_allclose(model.score_one(np.array([0])), [math.exp(-2), math.exp(-1) + 1])
    causal = model.with_score_params(causal=True)
    np.testing.assert_allclose(
        causal.score([np.array([0])], [np.array([10 * DAY])]), [[math.exp(-1), 1]]
    )


def test_next_item_design_by_hand():
    inputs, targets = next_item_design(
        [np.array([5, 6, 7])], 8, context=2, half_life=1.0, horizon=2, horizon_decay=0.5
    )
    assert inputs.shape == targets.shape == (2, 8)
    np.testing.assert_allclose(inputs.toarray()[:, 5:], [[1, 0, 0], [0.5, 1, 0]])
    np.testing.assert_allclose(targets.toarray()[:, 5:], [[0, 1, 0.5], [0, 0, 1]])


def test_sequence_models_learn_the_ring():
    split = protocol_a_split(synthetic_interactions(n_users=80), k=3)
    assert split.items == [str(i) for i in range(30)]  # item index == position on the ring
    histories, times = split.sequences("test")
    following = np.array([(h[-1] + 1) % 30 for h in histories])
    for model in (LinearTransition(lambda_=1.0), Transition()):
        model.fit(split.fit_matrix("test"), histories, times)
        scores = model.score(histories, times)
        for u, h in enumerate(histories):
            scores[u, h] = -np.inf
        assert np.mean(scores.argmax(axis=1) == following) > 0.6, model
    blind = Popularity().fit(split.fit_matrix("test")).score(histories)
    for u, h in enumerate(histories):
        blind[u, h] = -np.inf
    assert np.mean(blind.argmax(axis=1) == following) < 0.3
