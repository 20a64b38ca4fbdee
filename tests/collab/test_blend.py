import numpy as np
import pytest

from promptrec.collab import (
    EASE,
    Popularity,
    Transition,
    WeightedBlend,
    blend_scores,
    normalize_scores,
)
from promptrec.collab.blend import normalization_stats
from promptrec.collab.testing import synthetic_interactions
from promptrec.evaluation.splits import protocol_a_split


@pytest.fixture(scope="module")
def split():
    return protocol_a_split(synthetic_interactions(), k=3)


def test_normalisation_ignores_history_items():
    row = np.array([[1.0, 2.0, 3.0, 100.0]])
    z = normalize_scores(row, [np.array([3])], "zscore")
    np.testing.assert_allclose(z[0, :3], [-1.224744871, 0, 1.224744871], rtol=1e-8)
    m = normalize_scores(row, [np.array([3])], "minmax")
    np.testing.assert_allclose(m, [[0, 0.5, 1, 49.5]])
    np.testing.assert_allclose(normalize_scores(np.ones((1, 3)), [np.array([], int)], "zscore"), 0)
    np.testing.assert_allclose(normalize_scores(row, [np.array([3])], "none"), row)
    with pytest.raises(ValueError):
        normalization_stats(row, [np.array([3])], "rank")


def test_blend_scores_weights():
    a = np.array([[0.0, 1.0, 2.0]])
    b = np.array([[2.0, 1.0, 0.0]])
    h = [np.array([], int)]
    np.testing.assert_allclose(
        blend_scores({"a": a, "b": b}, {"a": 1.0, "b": 0.0}, h, "minmax"), [[0, 0.5, 1]]
    )
    np.testing.assert_allclose(
        blend_scores({"a": a, "b": b}, {"a": 1.0, "b": 3.0}, h, "minmax"), [[3, 2, 1]]
    )
    with pytest.raises(ValueError, match="zero"):
        blend_scores({"a": a}, {"a": 0.0}, h)


def test_weighted_blend_configuration_errors():
    with pytest.raises(ValueError, match="unknown components"):
        WeightedBlend({"pop": Popularity()}, weights={"ease": 1.0})
    with pytest.raises(ValueError, match="non-zero"):
        WeightedBlend({"pop": Popularity()}, weights={"pop": 0.0})
    blend = WeightedBlend({"pop": Popularity(), "ease": EASE()}, weights={"ease": 1.0})
    assert list(blend.components) == ["ease"]


def test_blend_equals_weighted_normalised_components(split):
    matrix, (histories, times) = split.fit_matrix("test"), split.sequences("test")
    blend = WeightedBlend(
        {"ease": EASE(lambda_=5.0), "transition": Transition()},
        weights={"ease": 0.5, "transition": 2.0},
        normalization="zscore",
    )
    got = blend.fit(matrix, histories, times).score(histories, times)
    ease = normalize_scores(EASE(lambda_=5.0).fit(matrix).score(histories), histories)
    trans = normalize_scores(Transition().fit(matrix, histories).score(histories), histories)
    np.testing.assert_allclose(got, 0.5 * ease + 2.0 * trans)


def test_blend_contributions_are_rescaled_component_contributions(split):
    matrix, (histories, times) = split.fit_matrix("test"), split.sequences("test")
    blend = WeightedBlend(
        {"ease": EASE(lambda_=5.0), "pop": Popularity()}, weights={"ease": 2.0, "pop": 1.0}
    ).fit(matrix, histories, times)
    history, item = histories[0], int(split.test_target[0])
    ease = blend.components["ease"]
    _, scale = normalization_stats(ease.score_one(history), [history], "zscore")
    np.testing.assert_allclose(
        blend.contributions(history, item), 2.0 * ease.contributions(history, item) / scale[0]
    )
    only_pop = WeightedBlend({"pop": Popularity()}, weights={"pop": 1.0}).fit(matrix)
    assert only_pop.contributions(history, item) is None
