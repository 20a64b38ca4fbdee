"""Order-aware item-to-item models: what follows the user's most recent items."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from .base import ItemItemScorer, ScorerConfig, flatten_sequences

__all__ = ["Transition", "TransitionConfig", "transition_counts"]


def transition_counts(
    sequences: Sequence[np.ndarray],
    n_items: int,
    window: int,
    distance_decay: float,
    backward_weight: float = 0.0,
    times: Sequence[np.ndarray] | None = None,
    max_gap_seconds: float | None = None,
) -> sp.csr_matrix:
    """Weighted counts of ``j -> k`` where ``k`` follows ``j`` within ``window`` positions.

    A pair ``d`` positions apart weighs ``distance_decay ** (d - 1)``; the reverse pair
    ``k -> j`` is added with ``backward_weight`` times that weight. With ``max_gap_seconds``
    (needs ``times``), pairs further apart in time are dropped.

    Returns:
        CSR matrix (n_items x n_items), rows = earlier item, columns = later item.
    """
    flat = flatten_sequences(sequences)
    stamps = None if times is None else np.concatenate([np.asarray(t, float) for t in times])
    rows, cols, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for d in range(1, window + 1):
        idx = np.flatnonzero(flat.remaining >= d)
        head, tail = flat.items[idx], flat.items[idx + d]
        weight = np.full(len(idx), distance_decay ** (d - 1))
        if max_gap_seconds is not None and stamps is not None:
            weight[stamps[idx + d] - stamps[idx] > max_gap_seconds] = 0.0
        rows += [head, tail]
        cols += [tail, head]
        vals += [weight, weight * backward_weight]
    counts = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )
    counts.setdiag(0.0)
    counts.eliminate_zeros()
    return counts


class TransitionConfig(ScorerConfig):
    """Windowed item-to-item transition model hyperparameters.

    Attributes:
        window: How many following positions count as a transition.
        distance_decay: Weight factor per extra position between the two items.
        backward_weight: Weight of the reverse direction (0 = strictly forward).
        max_gap_days: Ignore pairs further apart in time (None = no limit).
        row_power: Divide row ``j`` by its total weight to this power (1 = P(next | j)).
        target_power: Divide column ``k`` by item ``k``'s total weight to this power.
        half_life: Recency half-life over history positions; small = the last items dominate.
    """

    window: int = Field(3, ge=1)
    distance_decay: float = Field(0.5, gt=0, le=1)
    backward_weight: float = Field(0.0, ge=0)
    max_gap_days: float | None = Field(None, gt=0)
    row_power: float = Field(1.0, ge=0)
    target_power: float = Field(0.0, ge=0)
    half_life: float | None = Field(1.0, gt=0)


class Transition(ItemItemScorer[TransitionConfig]):
    """Sequential item-to-item model: ``score = sum_p w_p * T[h_p, :]`` with normalised
    windowed transition counts ``T`` and recency weights ``w_p`` that favour the last items."""

    name = "transition"
    config_class = TransitionConfig
    score_params = frozenset({"half_life"})

    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> Transition:
        """Count and normalise transitions in the time-ordered sequences."""
        if sequences is None:
            raise ValueError("Transition needs the time-ordered sequences")
        cfg = self.config
        n_items = matrix.shape[1]
        gap = None if cfg.max_gap_days is None else cfg.max_gap_days * 86_400.0
        counts = transition_counts(
            sequences, n_items, cfg.window, cfg.distance_decay, cfg.backward_weight, times, gap
        )
        out = np.asarray(counts.sum(axis=1)).ravel()
        into = np.asarray(counts.sum(axis=0)).ravel()
        row = np.power(out, -cfg.row_power, out=np.zeros_like(out), where=out > 0)
        col = np.power(into, -cfg.target_power, out=np.zeros_like(into), where=into > 0)
        self.similarity_ = sp.csr_matrix(sp.diags(row) @ counts @ sp.diags(col))
        self.n_items_ = n_items
        return self
