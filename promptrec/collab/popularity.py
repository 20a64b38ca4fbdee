"""Popularity scorers: global interaction counts, and counts local in time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from .base import ItemScorer, ScorerConfig, as_histories

__all__ = ["Popularity", "PopularityConfig", "TimeLocalPopularity", "TimeLocalPopularityConfig"]

_DAY = 86_400.0


class PopularityConfig(ScorerConfig):
    """Popularity has no hyperparameters."""


class Popularity(ItemScorer[PopularityConfig]):
    """Scores every item by its number of interactions in the fit data."""

    name = "popularity"
    config_class = PopularityConfig

    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> Popularity:
        """Count interactions per item."""
        self.counts_ = np.asarray(
            (sp.csr_matrix(matrix) != 0).sum(axis=0), dtype=np.float64
        ).ravel()
        self.n_items_ = len(self.counts_)
        return self

    def score(
        self,
        histories: Sequence[np.ndarray],
        times: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """The same count vector for every history."""
        self._require_fit()
        return np.tile(self.counts_, (len(as_histories(histories)), 1))


class TimeLocalPopularityConfig(ScorerConfig):
    """Time-local popularity hyperparameters.

    Attributes:
        bandwidth_days: Scale of the exponential time kernel, in days.
        causal: Count only interactions at or before the reference time.
    """

    bandwidth_days: float = Field(30.0, gt=0)
    causal: bool = False


class TimeLocalPopularity(ItemScorer[TimeLocalPopularityConfig]):
    """What everybody interacted with around the user's latest timestamp.

    ``score_i = sum over interactions (i, t) of exp(-|t - t_ref| / bandwidth)``, where
    ``t_ref`` is the last timestamp of the history (or, without times, the latest timestamp
    of the fit data). Order-aware through time: it tracks which items were current when
    the user was last active. Needs ``sequences`` and ``times`` in :meth:`fit`.
    """

    name = "timepop"
    config_class = TimeLocalPopularityConfig
    score_params = frozenset({"bandwidth_days", "causal"})
    chunk_size = 64

    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> TimeLocalPopularity:
        """Store every interaction's item and timestamp."""
        if sequences is None or times is None:
            raise ValueError("TimeLocalPopularity needs sequences and times")
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        stamps = np.concatenate([np.asarray(t, dtype=np.float64) for t in times])
        self.n_items_ = matrix.shape[1]
        self.times_ = stamps
        self.indicator_ = sp.csr_matrix(
            (np.ones(len(items)), (items, np.arange(len(items)))), shape=(self.n_items_, len(items))
        )
        self.latest_ = float(stamps.max())
        return self

    def reference_times(
        self, histories: Sequence[np.ndarray], times: Sequence[np.ndarray] | None
    ) -> np.ndarray:
        """Last timestamp of each history (the fit data's latest when unknown or empty)."""
        n = len(as_histories(histories))
        if times is None:
            return np.full(n, self.latest_)
        return np.array([float(t[-1]) if len(t) else self.latest_ for t in times])

    def score(
        self,
        histories: Sequence[np.ndarray],
        times: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Kernel-weighted interaction counts around each history's reference time."""
        self._require_fit()
        ref = self.reference_times(histories, times)
        scale = self.config.bandwidth_days * _DAY
        out = np.empty((len(ref), self.n_items_))
        for start in range(0, len(ref), self.chunk_size):
            delta = self.times_[None, :] - ref[start : start + self.chunk_size, None]
            kernel = np.exp(-np.abs(delta) / scale)
            if self.config.causal:
                kernel[delta > 0] = 0.0
            out[start : start + self.chunk_size] = (self.indicator_ @ kernel.T).T
        return out
