"""Item-item models over the binary user x item matrix: cosine ItemKNN and EASE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from .base import ItemItemScorer, ScorerConfig

__all__ = ["EASE", "EASEConfig", "ItemKNN", "ItemKNNConfig", "keep_top_neighbors"]


def keep_top_neighbors(similarity: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep each row's ``k`` largest entries (ties by lower column index)."""
    sim = sp.csr_matrix(similarity)
    rows, cols, vals = [], [], []
    for i in range(sim.shape[0]):
        start, end = sim.indptr[i], sim.indptr[i + 1]
        idx, val = sim.indices[start:end], sim.data[start:end]
        if len(idx) > k:
            keep = np.lexsort((idx, -val))[:k]
            idx, val = idx[keep], val[keep]
        rows.append(np.full(len(idx), i))
        cols.append(idx)
        vals.append(val)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape
    )


class ItemKNNConfig(ScorerConfig):
    """Cosine ItemKNN hyperparameters.

    Attributes:
        neighbors: Neighbours kept per history item (None = all).
        half_life: Recency half-life over history positions (None = plain sum).
    """

    neighbors: int | None = Field(None, ge=1)
    half_life: float | None = Field(None, gt=0)


class ItemKNN(ItemItemScorer[ItemKNNConfig]):
    """Cosine similarity of item columns of the binary matrix, summed over the history."""

    name = "itemknn"
    config_class = ItemKNNConfig
    score_params = frozenset({"half_life"})

    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> ItemKNN:
        """Compute the cosine item-item matrix (zero diagonal)."""
        x = sp.csr_matrix(matrix, dtype=np.float64)
        x.data[:] = 1.0
        co = sp.csr_matrix(x.T @ x)
        norms = np.sqrt(co.diagonal())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        sim = sp.csr_matrix(sp.diags(inv) @ co @ sp.diags(inv))
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        if self.config.neighbors is not None:
            sim = keep_top_neighbors(sim, self.config.neighbors)
        self.similarity_ = sim
        self.n_items_ = x.shape[1]
        return self


class EASEConfig(ScorerConfig):
    """EASE hyperparameters.

    Attributes:
        lambda_: L2 regularisation of the item-item weights.
        half_life: Recency half-life over history positions (None = plain sum).
    """

    lambda_: float = Field(200.0, gt=0)
    half_life: float | None = Field(None, gt=0)


class EASE(ItemItemScorer[EASEConfig]):
    """Embarrassingly shallow autoencoder (Steck 2019): closed-form item-item ridge weights."""

    name = "ease"
    config_class = EASEConfig
    score_params = frozenset({"half_life"})

    def fit(
        self,
        matrix: sp.csr_matrix,
        sequences: Sequence[np.ndarray] | None = None,
        times: Sequence[np.ndarray] | None = None,
    ) -> EASE:
        """Solve ``B = I - P diagMat(1/diag(P))`` with ``P = (X^T X + lambda I)^-1``."""
        x = sp.csr_matrix(matrix, dtype=np.float64)
        x.data[:] = 1.0
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += self.config.lambda_
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        np.fill_diagonal(weights, 0.0)
        self.similarity_ = weights
        self.n_items_ = x.shape[1]
        return self
