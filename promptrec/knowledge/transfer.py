"""Transfer map: item text vectors -> the collaborative item space, so items nobody has interacted
with yet can be scored for a user.

The collaborative space is fitted on the items with interactions (the "warm" items):

- ``svd``: the top ``factors`` right singular vectors ``V`` of the binary user x item matrix
  (PureSVD). A user is ``p = sum of V[h]`` over their history ``h`` (= ``U_u * S`` for a user in the
  fit); a warm item ``j`` scores ``p . V[j]``.
- ``ease``: EASE's item-item weights ``B``; an item ``j`` is its column ``B[:, j]`` (what each warm
  item says about it) and a user is the indicator of their history, so ``p . B[:, j]`` is EASE's score.

A ridge regression from the warm items' text vectors to their coordinates in that space then maps
any item's text vector to coordinates, and a new item ``j`` scores ``p . map(text_j)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from ..collab.neighbors import EASE
from .ridge import load_map, ridge, save_map

FORMAT = "promptrec-transfer-map/1"


class TransferConfig(BaseModel):
    """How the map is fitted.

    Attributes:
        space: ``svd`` (truncated-SVD item factors) or ``ease`` (EASE item-item columns).
        factors: SVD factors kept (``svd`` only).
        lambda_: Ridge penalty of the text -> space regression.
        ease_lambda: EASE's own penalty (``ease`` only).
        seed: Seed of the SVD's start vector.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    space: Literal["svd", "ease"] = "svd"
    factors: int = Field(64, ge=1)
    lambda_: float = Field(10.0, gt=0)
    ease_lambda: float = Field(200.0, gt=0)
    seed: int = 0


def svd_item_factors(matrix: sp.spmatrix, factors: int, seed: int = 0) -> np.ndarray:
    """The top right singular vectors of ``matrix`` as rows per item, shape (n_items, factors),
    strongest first, each column's sign fixed so that its sum is >= 0 (deterministic)."""
    x = sp.csr_matrix(matrix, dtype=np.float64)
    k = min(factors, min(x.shape) - 1)
    if k < 1:
        raise ValueError(f"a {x.shape} matrix has no truncated SVD")
    if min(x.shape) <= 2000:
        _, s, vt = np.linalg.svd(x.toarray(), full_matrices=False)
        s, vt = s[:k], vt[:k]
    else:
        from scipy.sparse.linalg import svds

        v0 = np.random.default_rng(seed).standard_normal(min(x.shape))
        _, s, vt = svds(x, k=k, v0=v0)
        order = np.argsort(-s)
        vt = vt[order]
    v = vt.T.copy()
    v *= np.where(v.sum(axis=0) < 0, -1.0, 1.0)
    return v


def collaborative_space(matrix: sp.spmatrix, config: TransferConfig,
                        spaces: dict | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """``(basis, targets)``: the user-side basis (None for ease) and each item's coordinates."""
    key = ("svd", config.factors, config.seed) if config.space == "svd" else ("ease", config.ease_lambda)
    if spaces is not None and key in spaces:
        return spaces[key]
    if config.space == "svd":
        basis = svd_item_factors(matrix, config.factors, config.seed)
        found = (basis, basis)
    else:
        found = (None, EASE(lambda_=config.ease_lambda).fit(sp.csr_matrix(matrix)).similarity_.T)
    if spaces is not None:
        spaces[key] = found
    return found


class TransferMap:
    """A fitted text -> collaborative-space map over ``items`` (the warm items, by index).

    Build it with :meth:`fit` or :meth:`load`.
    """

    def __init__(self, config: TransferConfig, items: list[str], basis: np.ndarray | None,
                 weights: np.ndarray, x_mean: np.ndarray, y_mean: np.ndarray, meta: dict | None = None) -> None:
        self.config = config
        self.items = list(items)
        self.index = {item: n for n, item in enumerate(self.items)}
        self.basis = basis  # (n_items, k) for svd; None for ease (the user vector is the history indicator)
        self.weights = weights
        self.x_mean = x_mean
        self.y_mean = y_mean
        self.meta = dict(meta or {})
        self.targets: np.ndarray | None = basis  # the warm items' own coordinates (ease: B's columns)

    @classmethod
    def fit(cls, matrix: sp.spmatrix, vectors: np.ndarray, items: Sequence[str],
            config: TransferConfig | None = None, meta: dict | None = None,
            spaces: dict | None = None) -> TransferMap:
        """Fit the space on ``matrix`` (users x items, binary) and the ridge map from ``vectors``
        (one text vector per item, same order as ``items`` and the matrix columns). ``spaces``: a dict
        that keeps fitted spaces for other maps over the same matrix (a hyperparameter grid)."""
        config = config or TransferConfig()
        vectors = np.asarray(vectors, dtype=np.float64)
        if matrix.shape[1] != len(items) or len(vectors) != len(items):
            raise ValueError(f"{matrix.shape[1]} matrix columns, {len(vectors)} vectors, {len(items)} items")
        basis, targets = collaborative_space(matrix, config, spaces)
        weights, x_mean, y_mean = ridge(vectors, targets, config.lambda_)
        fitted = cls(config, list(items), basis, weights, x_mean, y_mean, meta)
        fitted.targets = targets
        return fitted

    def map(self, vectors: np.ndarray) -> np.ndarray:
        """Coordinates of items in the collaborative space, from their text vectors (n, d) -> (n, k)."""
        return (np.asarray(vectors, dtype=np.float64) - self.x_mean) @ self.weights + self.y_mean

    def user_vectors(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """Each history (indices into :attr:`items`) as a vector of the space, shape (n_users, k)."""
        n = len(self.items)
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if len(rows) else rows
        indicator = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(histories), n))
        indicator.data[:] = 1.0  # an item twice in a history counts once, as in the fitted matrix
        return np.asarray(indicator @ self.basis) if self.basis is not None else indicator.toarray()

    def user_vector(self, history: Sequence[str]) -> np.ndarray:
        """A history of item ids as a vector of the space (items outside the map are ignored)."""
        return self.user_vectors([[self.index[i] for i in history if i in self.index]])[0]

    def score(self, user: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Scores of items (by their text vectors) for one or more user vectors."""
        return np.asarray(user) @ self.map(vectors).T

    def warm_scores(self, user: np.ndarray) -> np.ndarray:
        """Scores of the warm items themselves (PureSVD or EASE) for one or more user vectors."""
        if self.targets is None:
            raise ValueError("this map keeps no coordinates of the warm items")
        return np.asarray(user) @ self.targets.T

    # ----- files -----
    def save(self, path: Path) -> Path:
        """``path.npz`` + ``path.json`` (configuration, item ids, metadata); no pickle."""
        arrays = {"weights": self.weights, "x_mean": self.x_mean, "y_mean": self.y_mean}
        if self.basis is not None:
            arrays["basis"] = self.basis
        elif self.targets is not None:
            arrays["targets"] = self.targets.astype(np.float32)  # EASE's columns: scores the warm items
        meta = {"config": self.config.model_dump(), "items": self.items, "meta": self.meta}
        return save_map(path, FORMAT, meta, arrays)

    @classmethod
    def load(cls, path: Path) -> TransferMap:
        """Read a map saved by :meth:`save`. Raises :class:`~promptrec.knowledge.ridge.MapFileError`."""
        record, arrays = load_map(path, FORMAT)
        config = TransferConfig(**record["config"])
        loaded = cls(config, record["items"], arrays.get("basis"), arrays["weights"], arrays["x_mean"],
                     arrays["y_mean"], record.get("meta"))
        if "targets" in arrays:
            loaded.targets = arrays["targets"]  # float32, as saved
        return loaded


__all__ = ["TransferConfig", "TransferMap", "collaborative_space", "svd_item_factors"]
