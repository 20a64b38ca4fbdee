"""Weighted blend of scorers with per-user score normalisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from .base import ItemScorer, ScorerConfig, as_histories

__all__ = ["BlendConfig", "Normalization", "WeightedBlend", "blend_scores", "normalize_scores"]

Normalization = Literal["zscore", "minmax", "none"]


def _history_mask(histories: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    if len(rows):
        mask[rows, np.concatenate(histories)] = True
    return mask


def normalization_stats(
    scores: np.ndarray, histories: Sequence[np.ndarray], method: Normalization
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(offset, scale)`` computed over the items outside each row's history.

    ``zscore``: mean and standard deviation; ``minmax``: minimum and range; ``none``: 0 and 1.
    A constant row gets scale 1 (it normalises to a constant, carrying no preference).
    """
    s = np.array(scores, dtype=np.float64, ndmin=2)
    if method == "none":
        return np.zeros(len(s)), np.ones(len(s))
    free = np.where(_history_mask(as_histories(histories), s.shape), np.nan, s)
    if method == "zscore":
        offset, scale = np.nanmean(free, axis=1), np.nanstd(free, axis=1)
    elif method == "minmax":
        offset = np.nanmin(free, axis=1)
        scale = np.nanmax(free, axis=1) - offset
    else:
        raise ValueError(f"unknown normalization {method!r}")
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return np.nan_to_num(offset), scale


def normalize_scores(
    scores: np.ndarray, histories: Sequence[np.ndarray], method: Normalization = "zscore"
) -> np.ndarray:
    """Normalise each row with statistics over its non-history items (see
    :func:`normalization_stats`)."""
    offset, scale = normalization_stats(scores, histories, method)
    return (np.array(scores, dtype=np.float64, ndmin=2) - offset[:, None]) / scale[:, None]


def blend_scores(
    scores: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    histories: Sequence[np.ndarray],
    method: Normalization = "zscore",
) -> np.ndarray:
    """``sum_c weights[c] * normalize(scores[c])`` over components with a non-zero weight."""
    used = [name for name, w in weights.items() if w != 0.0]
    if not used:
        raise ValueError("every blend weight is zero")
    total = None
    for name in used:
        part = weights[name] * normalize_scores(scores[name], histories, method)
        total = part if total is None else total + part
    return total


class BlendConfig(ScorerConfig):
    """Blend hyperparameters.

    Attributes:
        weights: Weight per component name (components without a weight are left out).
        normalization: Per-user normalisation applied to each component before weighting.
    """

    weights: dict[str, float] = Field(default_factory=dict)
    normalization: Normalization = "zscore"


class WeightedBlend(ItemScorer[BlendConfig]):
    """Weighted sum of per-user normalised component scores.

    Example:
        >>> blend = WeightedBlend({"ease": EASE(), "transition": Transition()},
        ...                       weights={"ease": 1.0, "transition": 2.0})
    """

    name = "blend"
    config_class = BlendConfig

    def __init__(
        self, components: Mapping[str, ItemScorer], config: BlendConfig | None = None, **params
    ) -> None:
        super().__init__(config, **params)
        missing = set(self.config.weights) - set(components)
        if missing:
            raise ValueError(f"weights name unknown components {sorted(missing)}")
        self.components = {n: c for n, c in components.items() if self.config.weights.get(n, 0)}
        if not self.components:
            raise ValueError("a blend needs at least one component with a non-zero weight")

    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> WeightedBlend:
        """Fit every weighted component on the same data."""
        for component in self.components.values():
            component.fit(matrix, sequences, times)
        self.n_items_ = matrix.shape[1]
        return self

    def score(
        self,
        histories: Sequence[np.ndarray],
        times: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Blend the components' normalised scores."""
        self._require_fit()
        hist = as_histories(histories)
        parts = {n: c.score(hist, times) for n, c in self.components.items()}
        return blend_scores(parts, self.config.weights, hist, self.config.normalization)

    def contributions(
        self, history: np.ndarray, item: int, times: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Weighted, per-user rescaled sum of the attributable components' contributions."""
        self._require_fit()
        history = np.asarray(history, dtype=np.int64)
        total = None
        for name, component in self.components.items():
            part = component.contributions(history, item, times)
            if part is None:
                continue
            raw = component.score_one(history, times)
            _, scale = normalization_stats(raw, [history], self.config.normalization)
            part = self.config.weights[name] * part / scale[0]
            total = part if total is None else total + part
        return total
