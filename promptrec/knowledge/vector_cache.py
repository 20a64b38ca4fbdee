"""A per-text cache of vectors on disk: each text is embedded (or read by a model) once, whoever asks first.

Kept out of :mod:`promptrec.ranking.signals`, whose source names the signal definitions
(``signals_hash``): a change to this cache must not make fitted fusion models stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["VectorCache"]


class VectorCache:
    """Text vectors cached as .npy under ``folder``, keyed by the SHA-256 of each text (and the embedder).

    ``vectors-<embedder>.npy`` holds the rows, ``vectors-<embedder>.json`` the text hash of each row;
    new texts are embedded in one batch and appended (written atomically)."""

    def __init__(self, embedder, folder: Path) -> None:
        self.embedder = embedder
        self.folder = Path(folder)
        self.rows_path, self.keys_path = self.files(self.folder, getattr(embedder, "name", "embedder"))
        self._rows = np.zeros((0, embedder.dimension), dtype=np.float32)
        self._index: dict[str, int] = {}
        if self.rows_path.exists() and self.keys_path.exists():
            rows = np.load(self.rows_path, allow_pickle=False)
            keys = json.loads(self.keys_path.read_text())
            if isinstance(keys, list) and rows.ndim == 2 and len(keys) == len(rows) and rows.shape[1] == embedder.dimension:
                self._rows, self._index = rows.astype(np.float32), {k: n for n, k in enumerate(keys)}

    @staticmethod
    def files(folder: Path, name: str) -> tuple[Path, Path]:
        """The rows (.npy) and text hashes (.json) of an embedder named ``name`` under ``folder``."""
        tag = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        return Path(folder) / f"vectors-{tag}.npy", Path(folder) / f"vectors-{tag}.json"

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def has(self, text: str) -> bool:
        """Whether ``text``'s vector is cached (no embedding)."""
        return self.key(text) in self._index

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` (rows aligned), embedding only the texts not cached yet."""
        keys = [self.key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in self._index}
        if missing:
            new = np.asarray(self.embedder.embed(list(missing.values())), dtype=np.float32)
            start = len(self._rows)
            self._rows = np.vstack([self._rows, new])
            self._index.update({k: start + n for n, k in enumerate(missing)})
            self._save()
        if not keys:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return self._rows[[self._index[k] for k in keys]]

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        order = sorted(self._index, key=self._index.get)
        tmp = self.rows_path.with_name(self.rows_path.name + f".tmp{os.getpid()}")
        with tmp.open("wb") as handle:
            np.save(handle, self._rows)
        tmp.replace(self.rows_path)
        tmp = self.keys_path.with_name(self.keys_path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(order))
        tmp.replace(self.keys_path)
