"""Collaborative evidence for the product: classical scorers fitted on an interaction log, by item id."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..collab.base import ItemScorer, interaction_matrix
from ..data import InteractionLog


class CollaborativeModel:
    """Maps item ids to indices, fits each scorer once, and scores any history of item ids.

    Args:
        scorers: Name -> unfitted scorer (names are the fusion weight keys).
        min_support: Items with fewer interactions are left out of the collaborative index
            (they can still be retrieved by embedding).
    """

    def __init__(self, scorers: Mapping[str, ItemScorer], min_support: int = 2) -> None:
        self.scorers = dict(scorers)
        self.min_support = min_support
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def fit(self, log: InteractionLog) -> CollaborativeModel:
        counts = log.item_counts
        self.items = sorted(counts[counts >= self.min_support].index, key=lambda i: (-counts[i], i))
        self.index = {item: n for n, item in enumerate(self.items)}
        users, sequences, times = log.sequences()
        seqs, tims = [], []
        for history, stamps in zip(sequences, times):
            keep = [(self.index[i], t) for i, t in zip(history, stamps) if i in self.index]
            seqs.append(np.array([i for i, _ in keep], dtype=np.int64))
            tims.append(np.array([t for _, t in keep], dtype=np.int64))
        matrix = interaction_matrix(seqs, len(self.items))
        for scorer in self.scorers.values():
            scorer.fit(matrix, seqs, tims)
        return self

    def fingerprint(self, log: InteractionLog) -> str:
        """Names the fitted state: the data, the scorers' configurations and the support threshold."""
        data = pd.util.hash_pandas_object(log.frame, index=False).to_numpy()
        digest = hashlib.sha256(data.tobytes())
        digest.update(repr(sorted((n, repr(s)) for n, s in self.scorers.items())).encode())
        digest.update(str(self.min_support).encode())
        return digest.hexdigest()[:16]

    def fit_cached(self, log: InteractionLog, folder: Path) -> CollaborativeModel:
        """Fit, or load the same fit from ``folder`` (written atomically after a fit)."""
        path = Path(folder) / f"collab-{self.fingerprint(log)}.pkl"
        if path.exists():
            try:
                with path.open("rb") as handle:
                    return pickle.load(handle)
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                path.unlink()
        self.fit(log)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as handle:
            pickle.dump(self, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        for old in path.parent.glob("collab-*.pkl"):
            if old != path:
                old.unlink(missing_ok=True)
        return self

    def encode(self, history: Sequence[str], times: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Indices of the known history items (unknown ones are dropped), with their timestamps."""
        keep = [n for n, item in enumerate(history) if item in self.index]
        idx = np.array([self.index[history[n]] for n in keep], dtype=np.int64)
        stamps = None if times is None else np.array([times[n] for n in keep], dtype=np.int64)
        return idx, stamps

    def score(self, history: Sequence[str], times: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Per scorer, a score for every item in :attr:`items`."""
        idx, stamps = self.encode(history, times)
        return {name: s.score_one(idx, stamps) for name, s in self.scorers.items()}

    def evidence(self, name: str, history: Sequence[str], item_id: str, times: Sequence[int] | None = None) -> str | None:
        """The history item that adds most to ``item_id``'s score under scorer ``name``."""
        if item_id not in self.index or name not in self.scorers:
            return None
        known = [i for i in history if i in self.index]
        idx, stamps = self.encode(history, times)
        if len(idx) == 0:
            return None
        parts = self.scorers[name].contributions(idx, self.index[item_id], stamps)
        if parts is None or not np.any(parts > 0):
            return None
        return known[int(np.argmax(parts))]
