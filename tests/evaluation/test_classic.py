import numpy as np
import pytest

from promptrec.collab import EASE, Popularity, Transition, WeightedBlend
from promptrec.collab.testing import synthetic_interactions
from promptrec.evaluation.classic import (
    classic_table,
    evaluate_scorer,
    evaluate_scores,
    fit_and_score,
    format_table,
)
from promptrec.evaluation.splits import protocol_a_split


@pytest.fixture(scope="module")
def split():
    return protocol_a_split(synthetic_interactions(n_users=60, n_items=40), k=3)


def test_fit_and_score_uses_only_the_stage_data(split):
    valid = fit_and_score(Popularity(), split, "valid")
    test = fit_and_score(Popularity(), split, "test")
    np.testing.assert_array_equal(valid[0], split.fit_matrix("valid").sum(axis=0).A1)
    np.testing.assert_array_equal(test[0] - valid[0], np.bincount(split.valid_target, minlength=40))


def test_history_is_excluded_from_the_ranking(split):
    scores = np.zeros((split.n_users, split.n_items))
    histories, _ = split.sequences("test")
    for u, h in enumerate(histories):
        scores[u, h] = 10.0  # history ranked first would push every target down
        scores[u, split.test_target[u]] = 1.0
    assert evaluate_scores(scores, split, "test")["R@1"] == 1.0


def test_classic_table_blend_row_equals_fitting_the_blend(split):
    parts = {"ease": EASE(lambda_=10.0), "transition": Transition(), "pop": Popularity()}
    blend = WeightedBlend(parts, weights={"ease": 1.0, "transition": 2.0, "pop": 0.5})
    rows = classic_table(split, {"ease": EASE(lambda_=10.0), "blend": blend})
    by_key = {(r["model"], r["stage"]): r for r in rows}
    fresh = WeightedBlend(
        {"ease": EASE(lambda_=10.0), "transition": Transition(), "pop": Popularity()},
        weights={"ease": 1.0, "transition": 2.0, "pop": 0.5},
    )
    for stage in ("valid", "test"):
        direct = evaluate_scorer(fresh, split, stage)
        assert by_key[("blend", stage)]["N@10"] == pytest.approx(direct["N@10"])
        assert by_key[("blend", stage)]["R@20"] == pytest.approx(direct["R@20"])
    assert by_key[("blend", "test")]["N@10"] > by_key[("ease", "test")]["N@10"]


def test_format_table():
    rows = [{"model": "Pop", "stage": "test", "R@10": 0.04431, "N@10": 0.0211}]
    text = format_table(rows, metrics=("R@10", "N@10"))
    assert text.splitlines() == [
        "| model | stage | R@10 | N@10 |",
        "|---|---|---|---|",
        "| Pop | test | 0.0443 | 0.0211 |",
    ]
