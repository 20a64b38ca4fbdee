"""The reference figures of docs/evaluation.md, reproduced on the real ml-latest-small."""

import pytest

from promptrec.collab import EASE, ItemKNN, Popularity, Transition
from promptrec.evaluation.classic import evaluate_scorer
from promptrec.evaluation.splits import protocol_a_split

pytestmark = pytest.mark.integration  # the real dataset, found through PROMPTREC_DATA_DIR
TOLERANCE = 0.002


@pytest.fixture(scope="module")
def split(movielens):
    return protocol_a_split(movielens.interactions.frame)


@pytest.mark.parametrize(
    ("scorer", "expected"),
    [
        (Popularity(), (0.0443, 0.0211, 0.0705, 0.0276)),
        (ItemKNN(), (0.0557, 0.0255, 0.1033, 0.0374)),
        (EASE(lambda_=200.0), (0.0885, 0.0410, 0.1410, 0.0542)),
    ],
    ids=["pop", "itemknn", "ease"],
)
def test_reference_figures_on_test(split, scorer, expected):
    got = evaluate_scorer(scorer, split, "test")
    measured = (got["R@10"], got["N@10"], got["R@20"], got["N@20"])
    assert measured == pytest.approx(expected, abs=TOLERANCE)


def test_order_aware_transition_beats_order_blind_ease_on_validation(split):
    ease = evaluate_scorer(EASE(lambda_=200.0), split, "valid")
    transition = evaluate_scorer(Transition(), split, "valid")
    assert transition["N@10"] > ease["N@10"] + 0.02
