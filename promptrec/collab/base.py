"""The scorer interface shared by every collaborative and sequential model.

A scorer is fit on the data available at one moment (a binary user x item matrix plus the
time-ordered item sequences and their timestamps) and then scores whole catalogs for any
histories, including ad-hoc histories of users absent from the fit data.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

__all__ = [
    "FlatSequences",
    "ItemItemScorer",
    "ItemScorer",
    "ScorerConfig",
    "as_histories",
    "flatten_sequences",
    "recency_weights",
    "weighted_history_matrix",
]

ConfigT = TypeVar("ConfigT", bound="ScorerConfig")


class ScorerConfig(BaseModel):
    """Base of scorer configurations: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def as_histories(histories: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Normalise a history batch to a list of int64 arrays (a 1-d array is one history)."""
    if isinstance(histories, np.ndarray) and histories.ndim == 1:
        return [histories.astype(np.int64)]
    return [np.asarray(h, dtype=np.int64).ravel() for h in histories]


@dataclass(frozen=True)
class FlatSequences:
    """Sequences concatenated, with each entry's owner and place.

    Attributes:
        items: All entries, sequence after sequence.
        owner: Index of the sequence of each entry.
        position: 0-based position of each entry within its sequence.
        remaining: Number of entries after it in its sequence.
    """

    items: np.ndarray
    owner: np.ndarray
    position: np.ndarray
    remaining: np.ndarray


def flatten_sequences(sequences: Sequence[np.ndarray]) -> FlatSequences:
    """Concatenate sequences so that entry ``i + d`` is ``d`` steps after entry ``i`` whenever
    ``remaining[i] >= d`` (and ``d`` steps before when ``position[i] >= d``)."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if len(lengths) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return FlatSequences(empty, empty, empty, empty)
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    owner = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(len(items)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return FlatSequences(items, owner, position, lengths[owner] - position - 1)


def recency_weights(length: int, half_life: float | None, context: int | None = None) -> np.ndarray:
    """Weight per history position: the newest item weighs 1 and weight halves every
    ``half_life`` positions back; ``None`` gives uniform weights (an order-blind sum).
    With ``context``, only the newest ``context`` positions get a non-zero weight."""
    age = np.arange(length - 1, -1, -1, dtype=np.float64)
    weights = np.ones(length) if half_life is None else np.power(0.5, age / half_life)
    if context is not None:
        weights[age >= context] = 0.0
    return weights


def interaction_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary (users x n_items) matrix of item-index histories: 1.0 where a user has the item.

    The one user x item matrix builder: the product's collaborative model and the evaluation
    splits both fit on it."""
    mat = weighted_history_matrix(histories, n_items, half_life=None)
    mat.data[:] = 1.0
    return mat


def weighted_history_matrix(
    histories: Sequence[np.ndarray],
    n_items: int,
    half_life: float | None,
    context: int | None = None,
) -> sp.csr_matrix:
    """Sparse (batch x n_items) matrix of recency-weighted histories; repeats add up."""
    lengths = [len(h) for h in histories]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if indptr[-1] == 0:
        return sp.csr_matrix((len(histories), n_items))
    indices = np.concatenate(histories).astype(np.int64)
    data = np.concatenate([recency_weights(n, half_life, context) for n in lengths])
    mat = sp.csr_matrix((data, indices, indptr), shape=(len(histories), n_items))
    mat.sum_duplicates()
    return mat


class ItemScorer(ABC, Generic[ConfigT]):
    """Scores every catalog item for a batch of time-ordered histories.

    Subclasses set ``name`` and ``config_class`` and implement :meth:`fit` and :meth:`score`.
    Construct with a config object or its fields as keywords: ``EASE(lambda_=300)``.
    ``score_params`` names the config fields used only at scoring time.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ScorerConfig]]
    score_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ConfigT | None = None, **params: Any) -> None:
        if config is not None and params:
            raise TypeError("pass either a config or keyword parameters, not both")
        self.config: ConfigT = config if config is not None else self.config_class(**params)
        self.n_items_: int | None = None

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({fields})"

    @abstractmethod
    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> ItemScorer[ConfigT]:
        """Learn from the available data.

        Args:
            matrix: Binary user x item CSR matrix.
            sequences: Per user, item indices in time order (order-aware scorers need it).
            times: Per user, unix timestamps matching ``sequences``.

        Returns:
            ``self``.
        """

    @abstractmethod
    def score(
        self,
        histories: Sequence[np.ndarray],
        times: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Score all items for each history.

        Args:
            histories: Per user, item indices in time order (oldest first).
            times: Optional timestamps matching ``histories``.

        Returns:
            Dense float array, shape (len(histories), n_items). History items are scored
            like any other item; the caller excludes them.
        """

    def with_score_params(self, **params: Any) -> ItemScorer[ConfigT]:
        """A copy that shares the fitted state, with scoring-time hyperparameters changed.

        Raises:
            ValueError: If a parameter also affects fitting (is not in ``score_params``).
        """
        refit = set(params) - self.score_params
        if refit:
            raise ValueError(f"{sorted(refit)} change the fit of {type(self).__name__}; refit")
        clone = copy.copy(self)
        clone.config = self.config_class.model_validate({**self.config.model_dump(), **params})
        return clone

    def score_one(self, history: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """Score all items for one ad-hoc history; returns shape (n_items,)."""
        return self.score([np.asarray(history)], None if times is None else [times])[0]

    def contributions(
        self, history: np.ndarray, item: int, times: np.ndarray | None = None
    ) -> np.ndarray | None:
        """How much each history position adds to ``item``'s score (None: not attributable)."""
        return None

    def _require_fit(self) -> int:
        if self.n_items_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        return self.n_items_


class ItemItemScorer(ItemScorer[ConfigT]):
    """Scores as a recency-weighted sum of item-item rows: ``score = sum_p w_p * S[h_p, :]``.

    Subclasses fill ``similarity_`` (dense ndarray or sparse matrix, n_items x n_items) in
    :meth:`fit`; their config needs a ``half_life`` field (None = order-blind sum) and may
    have a ``context`` field (only the newest ``context`` history items count).
    """

    similarity_: np.ndarray | sp.spmatrix

    def score(
        self,
        histories: Sequence[np.ndarray],
        times: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Recency-weighted sum of the similarity rows of the history items."""
        n_items = self._require_fit()
        hist = weighted_history_matrix(
            as_histories(histories), n_items, self.config.half_life, self._context()
        )
        out = hist @ self.similarity_
        return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float64)

    def contributions(
        self, history: np.ndarray, item: int, times: np.ndarray | None = None
    ) -> np.ndarray:
        """Per history position: its recency weight times its similarity to ``item``."""
        self._require_fit()
        history = np.asarray(history, dtype=np.int64)
        column = self.similarity_[history, item]
        column = np.asarray(column.toarray() if sp.issparse(column) else column).ravel()
        return recency_weights(len(history), self.config.half_life, self._context()) * column

    def _context(self) -> int | None:
        return getattr(self.config, "context", None)
