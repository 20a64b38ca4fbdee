"""Closed-form linear next-item model (the transition part of SLIST, Choi et al. 2021)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from .base import (
    FlatSequences,
    ItemItemScorer,
    ScorerConfig,
    flatten_sequences,
    recency_weights,
)

__all__ = ["LinearTransition", "LinearTransitionConfig", "next_item_design"]


def next_item_design(
    sequences: Sequence[np.ndarray],
    n_items: int,
    context: int,
    half_life: float | None,
    horizon: int = 1,
    horizon_decay: float = 0.5,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Inputs and targets of every next-item prediction in the sequences.

    One row per (user, position t >= 1): the input holds the ``context`` items before ``t``
    with :func:`recency_weights`; the target holds the items at ``t .. t+horizon-1`` weighted
    ``horizon_decay ** h``.

    Returns:
        ``(inputs, targets)``, two CSR matrices of shape (n_rows, n_items).
    """
    flat = flatten_sequences(sequences)
    row_of = np.arange(len(flat.items)) - flat.owner - 1  # rows skip each sequence's start
    shape = (int((flat.position >= 1).sum()), n_items)
    weights = recency_weights(context, half_life)[::-1]  # weights[d - 1]: d steps back

    inputs = [(flat.position >= d, -d, weights[d - 1]) for d in range(1, context + 1)]
    targets = [
        ((flat.position >= 1) & (flat.remaining >= h), h, horizon_decay**h) for h in range(horizon)
    ]
    return _pairs_matrix(inputs, flat, row_of, shape), _pairs_matrix(targets, flat, row_of, shape)


def _pairs_matrix(
    parts: list[tuple[np.ndarray, int, float]],
    flat: FlatSequences,
    row_of: np.ndarray,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """Sum of ``value`` at (row of entry i, item of entry i + offset) for each masked i."""
    rows, cols, vals = [], [], []
    for mask, offset, value in parts:
        idx = np.flatnonzero(mask)
        rows.append(row_of[idx])
        cols.append(flat.items[idx + offset])
        vals.append(np.full(len(idx), value))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )


class LinearTransitionConfig(ScorerConfig):
    """Linear next-item model hyperparameters.

    Attributes:
        lambda_: L2 regularisation.
        context: Number of most recent items used as input.
        half_life: Recency half-life over the input positions.
        horizon: Number of following items used as the target of each prediction.
        horizon_decay: Weight factor per step further into the future.
    """

    lambda_: float = Field(100.0, gt=0)
    context: int = Field(10, ge=1)
    half_life: float | None = Field(2.0, gt=0)
    horizon: int = Field(1, ge=1)
    horizon_decay: float = Field(0.5, gt=0, le=1)


class LinearTransition(ItemItemScorer[LinearTransitionConfig]):
    """Ridge regression from the recency-weighted recent items to the next item(s):
    ``B = (P^T P + lambda I)^-1 P^T T``, scored as ``x_recent @ B``."""

    name = "linear_transition"
    config_class = LinearTransitionConfig

    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> LinearTransition:
        """Solve the ridge regression on every next-item prediction of the sequences."""
        if sequences is None:
            raise ValueError("LinearTransition needs the time-ordered sequences")
        cfg = self.config
        n_items = matrix.shape[1]
        inputs, targets = next_item_design(
            sequences, n_items, cfg.context, cfg.half_life, cfg.horizon, cfg.horizon_decay
        )
        gram = np.asarray((inputs.T @ inputs).toarray())
        gram[np.diag_indices_from(gram)] += cfg.lambda_
        cross = np.asarray((inputs.T @ targets).toarray())
        self.similarity_ = np.linalg.solve(gram, cross)
        self.n_items_ = n_items
        return self
