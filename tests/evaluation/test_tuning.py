import dataclasses

import numpy as np
import pytest

from promptrec.collab import WeightedBlend
from promptrec.collab.testing import synthetic_interactions
from promptrec.evaluation.classic import fit_and_score
from promptrec.evaluation.metrics import ndcg_at_k, rank_of_target
from promptrec.evaluation.splits import protocol_a_split
from promptrec.evaluation.tuning import tune_classic_blend, validation_folds

GRIDS = {
    "popularity": ("popularity", [{}]),
    "ease": ("ease", [{"lambda_": 1.0}, {"lambda_": 50.0, "half_life": 2.0}]),
    "transition": ("transition", [{"half_life": 1.0}, {"half_life": 4.0, "backward_weight": 1.0}]),
}


@pytest.fixture(scope="module")
def split():
    return protocol_a_split(synthetic_interactions(n_users=60, n_items=40, seed=3), k=3)


@pytest.fixture(scope="module")
def result(split):
    return tune_classic_blend(split, grids=GRIDS, n_folds=2, weight_steps=(0.0, 0.5, 1.0), rounds=2)


def test_selection_comes_from_the_grids(result):
    assert result.params["ease"]["scorer"] == "ease"
    settings = {k: v for k, v in result.params["transition"].items() if k != "scorer"}
    assert settings in GRIDS["transition"][1]
    assert set(result.weights) == set(GRIDS)
    assert set(result.weights.values()) <= {0.0, 0.5, 1.0} and any(result.weights.values())
    assert result.normalization in ("zscore", "minmax")
    assert any(line.startswith("blend[") for line in result.log)


def test_reported_validation_equals_the_built_blend_on_the_folds(split, result):
    blend = result.build()
    assert isinstance(blend, WeightedBlend)
    gains = []
    for fold in validation_folds(split, 2):
        scores = fit_and_score(blend, fold, "valid")
        ranks = rank_of_target(scores, fold.valid_target, fold.sequences("valid")[0])
        gains.append(ndcg_at_k(ranks, 10))
    assert np.mean(np.concatenate(gains)) == pytest.approx(result.validation[0])


def test_test_targets_are_never_read(split, result):
    rng = np.random.default_rng(0)
    scrambled = dataclasses.replace(
        split,
        test_target=rng.integers(0, split.n_items, split.n_users),
        test_time=split.test_time + 10**6,
    )
    again = tune_classic_blend(
        scrambled, grids=GRIDS, n_folds=2, weight_steps=(0.0, 0.5, 1.0), rounds=2
    )
    assert again.params == result.params
    assert again.weights == result.weights
    assert again.validation == result.validation
