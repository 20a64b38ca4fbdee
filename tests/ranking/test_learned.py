"""Learning to rank: both learners find a planted signal; the model file round-trips and refuses other signals."""

import json

import numpy as np
import pytest

from promptrec.errors import PromptrecError
from promptrec.ranking.learned import (FusionModelError, LearnedFusion, Queries, out_of_fold_scores, query_ranks,
                                       user_folds)


def planted(n_queries=120, size=30, seed=0) -> Queries:
    """The target's signal 0 is higher than the others' (signal 1 is noise; signal 2 is sometimes missing)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_queries * size, 3))
    labels = np.zeros(n_queries * size)
    for q in range(n_queries):
        t = q * size + int(rng.integers(size))
        labels[t] = 1.0
        X[t, 0] += 3.0
    X[rng.random(len(X)) < 0.3, 2] = np.nan
    offsets = np.arange(0, n_queries * size + 1, size)
    return Queries(X, labels, offsets, [f"u{q // 2}" for q in range(n_queries)])


@pytest.mark.parametrize("kind,params", [("lightgbm", {"rounds": 40, "min_data_in_leaf": 5}), ("linear", {"l2": 1.0})])
def test_learners_find_the_planted_signal_out_of_fold(kind, params):
    q = planted()
    folds = user_folds(q.users, 3, seed=0)
    ranks = query_ranks(out_of_fold_scores(kind, q, params, folds, seed=0), q)
    assert np.mean(ranks < 3) > 0.8
    random_ranks = query_ranks(np.zeros(len(q.X)), q)  # ties: pool order, as good as chance
    assert np.mean(ranks) < np.mean(random_ranks) / 3


def test_user_folds_keep_a_user_together():
    users = ["a", "b", "a", "c", "b", "d"]
    folds = user_folds(users, 2, seed=1)
    assert folds[0] == folds[2] and folds[1] == folds[4] and set(folds) == {0, 1}


def test_query_ranks_tie_rule_and_missing_target():
    q = Queries(np.zeros((5, 1)), np.array([0, 1, 0, 0, 0.0]), np.array([0, 3, 5]), ["a", "b"])
    assert query_ranks(np.array([1.0, 1.0, 2.0, 0.0, 0.0]), q).tolist() == [2.0, np.inf]


@pytest.mark.parametrize("kind", ["lightgbm", "linear"])
def test_model_file_round_trips_and_refuses_other_signals(kind, tmp_path):
    q = planted(40)
    model = LearnedFusion.fit(kind, q, ["s0", "s1", "s2"], "hash-a", {"rounds": 10, "min_data_in_leaf": 5}, seed=0,
                              metadata={"dataset_sha256": "x" * 64})
    path = model.save(tmp_path / "fusion-model.json")
    data = json.loads(path.read_text())
    assert data["signals_hash"] == "hash-a" and data["metadata"]["dataset_sha256"] == "x" * 64
    assert isinstance(data["model"], str if kind == "lightgbm" else dict)  # LightGBM's own text format
    again = LearnedFusion.load(path, "hash-a")
    assert np.allclose(again.predict(q.X), model.predict(q.X))
    with pytest.raises(FusionModelError) as err:
        LearnedFusion.load(path, "hash-b")
    assert isinstance(err.value, PromptrecError) and "\n" not in str(err.value) and "other signals" in str(err.value)


def test_tampered_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(FusionModelError):
        LearnedFusion.load(path)
    path.write_text(json.dumps({"format": "promptrec-learned-fusion/1", "kind": "linear", "signals": ["a"],
                                "signals_hash": "h", "model": {"mean": [0], "scale": [1], "weights": [1, 2]}}))
    with pytest.raises(FusionModelError, match="malformed"):
        LearnedFusion.load(path)
    path.write_text(json.dumps({"format": "promptrec-learned-fusion/1", "kind": "lightgbm", "signals": ["a"],
                                "signals_hash": "h", "model": "tree\nnot a model"}))
    with pytest.raises(FusionModelError):
        LearnedFusion.load(path)


def test_predict_checks_the_signal_count():
    model = LearnedFusion.fit("linear", planted(10), ["a", "b", "c"], "h")
    with pytest.raises(FusionModelError):
        model.predict(np.zeros((2, 2)))


def test_linear_graded_labels_weigh_their_queries():
    """Next-item labels of any one grade fit the same model; graded ones weigh a query by its grade, so the
    queries whose target signal 1 marks (graded 3) pull the model towards signal 1."""
    from promptrec.ranking.learned import LinearModel

    q = planted()
    targets = np.flatnonzero(q.labels)
    marked = targets[::2]
    q.X[marked, 1] += 3.0  # half the targets also stand out on signal 1
    same = LinearModel.fit(q).weights
    assert np.allclose(same, LinearModel.fit(q.with_labels(q.labels * 2.0)).weights, atol=1e-6)
    graded = q.labels.copy()
    graded[marked] = 3.0
    weighted = LinearModel.fit(q.with_labels(graded)).weights
    assert weighted[1] > same[1] + 0.1
