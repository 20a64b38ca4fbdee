"""Collaborative evidence for the product: classical scorers fitted on an interaction log, by item id."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from filelock import FileLock

from ..collab.base import ItemScorer, interaction_matrix
from ..collab.state import StateError, export_state, import_state, save_npz
from ..data import InteractionLog

log_ = logging.getLogger(__name__)
FORMAT = "promptrec-collab/1"


def _array_bytes(array: np.ndarray | None) -> bytes:
    if array is None or array.dtype != np.uint8 or array.ndim != 1:
        raise StateError("no manifest")
    return array.tobytes()


def _check_scores(name: str, scorer: ItemScorer, n_items: int) -> None:
    """A loaded scorer must score every item, finitely, for a short history."""
    if scorer.n_items_ != n_items:
        raise StateError(f"{name} scores {scorer.n_items_} items, the model has {n_items}")
    if n_items == 0:
        return
    history = np.arange(min(n_items, 3), dtype=np.int64)
    scores = scorer.score_one(history, np.arange(len(history), dtype=np.int64))
    if scores.shape != (n_items,) or not np.all(np.isfinite(scores)):
        raise StateError(f"{name} gives malformed scores")


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
        """Fit, or load the same fit from ``folder``.

        The fit is saved as ``collab-<fingerprint>.npz``: numeric arrays plus a JSON manifest
        (format, fingerprint, item ids, support, each scorer's class, configuration and state),
        read back with ``allow_pickle=False``; nothing in it can run code. A file that is corrupt,
        tampered with or made for other scorers is deleted and the model refitted. A file lock
        lets one process fit while others wait for its file.
        """
        folder = Path(folder)
        fingerprint = self.fingerprint(log)
        path = folder / f"collab-{fingerprint}.npz"
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / "collab.lock")):
            if path.exists():
                try:
                    return self._load(path, fingerprint)
                except Exception as err:  # noqa: BLE001 - any unreadable file is refitted, never trusted
                    log_.warning("%s is unusable (%s); refitting", path, err)
                    path.unlink(missing_ok=True)
            self.fit(log)
            self._save(path, fingerprint)
        for old in [*folder.glob("collab-*.npz"), *folder.glob("collab-*.pkl")]:
            if old != path:
                old.unlink(missing_ok=True)  # an earlier fit, or a .pkl from an older version: never loaded
        return self

    def _save(self, path: Path, fingerprint: str) -> None:
        arrays: dict[str, np.ndarray] = {}
        manifest = {
            "format": FORMAT, "fingerprint": fingerprint, "min_support": self.min_support, "items": self.items,
            "scorers": {name: export_state(s, arrays) for name, s in self.scorers.items()},
        }
        arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
        save_npz(path, arrays)

    def _load(self, path: Path, fingerprint: str) -> CollaborativeModel:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        manifest = json.loads(_array_bytes(arrays.pop("manifest", None)))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise StateError("not a promptrec collaborative model file")
        if manifest.get("fingerprint") != fingerprint or manifest.get("min_support") != self.min_support:
            raise StateError("made from other data or settings")
        items = manifest.get("items")
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items) or len(set(items)) != len(items):
            raise StateError("malformed item ids")
        scorers = manifest.get("scorers")
        if not isinstance(scorers, dict) or set(scorers) != set(self.scorers):
            raise StateError("made for other scorers")
        for name, scorer in self.scorers.items():
            import_state(scorer, scorers[name], arrays)
            _check_scores(name, scorer, len(items))
        self.items = items
        self.index = {item: n for n, item in enumerate(items)}
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
