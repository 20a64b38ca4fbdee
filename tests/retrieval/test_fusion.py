import numpy as np
import pytest

from promptrec.retrieval import fuse, standardize


def test_standardize_is_a_z_score_with_missing_as_minimum():
    out = standardize(np.array([1.0, 3.0, np.nan]))
    assert out == pytest.approx([-0.70710678, 1.41421356, -0.70710678])
    assert np.all(standardize(np.array([2.0, 2.0])) == 0)


def test_weights_come_from_configuration():
    sources = {"a": np.array([0.0, 1.0, 2.0]), "b": np.array([2.0, 1.0, 0.0])}
    fused, parts = fuse(sources, {"a": 1.0, "b": 0.0})
    assert np.argmax(fused) == 2 and set(parts) == {"a"}
    fused, _ = fuse(sources, {"a": 1.0, "b": 3.0})
    assert np.argmax(fused) == 0
    fused, _ = fuse(sources, {"a": 1.0, "b": 1.0})
    assert np.allclose(fused, 0)
