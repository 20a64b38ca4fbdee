"""Ridge regression with an unpenalised intercept, and the safe file format the fitted maps share.

A map is saved as two files side by side: ``NAME.npz`` (numeric arrays only, read back with
``allow_pickle=False``) and ``NAME.json`` (format, configuration, metadata and the SHA-256 of the
``.npz``). Nothing in either can run code; a pair that does not match is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..collab.state import save_npz
from ..errors import StoreError


class MapFileError(StoreError):
    """A saved map is missing, corrupt, of another format or made for other data."""


def ridge(x: np.ndarray, y: np.ndarray, lambda_: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares ``y ~ (x - x_mean) @ w + y_mean`` with penalty ``lambda_ * |w|^2``.

    Args:
        x: Inputs, shape (n, d).
        y: Targets, shape (n, m).
        lambda_: L2 penalty (> 0).

    Returns:
        ``(w, x_mean, y_mean)`` with ``w`` of shape (d, m).
    """
    if lambda_ <= 0:
        raise ValueError(f"lambda_ must be > 0, got {lambda_}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"ridge needs x (n, d) and y (n, m) with n > 0; got {x.shape} and {y.shape}")
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc = x - x_mean
    gram = xc.T @ xc
    gram[np.diag_indices_from(gram)] += lambda_
    w = np.linalg.solve(gram, xc.T @ (y - y_mean))
    return w, x_mean, y_mean


def save_map(path: Path, fmt: str, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``path.npz`` then ``path.json`` (atomically each); returns the ``.json`` path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    npz, js = path.with_suffix(".npz"), path.with_suffix(".json")
    save_npz(npz, arrays)
    record = {"format": fmt, **meta, "arrays": sorted(arrays), "npz_sha256": _sha256(npz)}
    tmp = js.with_name(f"{js.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    tmp.replace(js)
    return js


def load_map(path: Path, fmt: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a pair written by :func:`save_map`. Raises :class:`MapFileError` when it does not check out."""
    path = Path(path)
    npz, js = path.with_suffix(".npz"), path.with_suffix(".json")
    try:
        record = json.loads(js.read_text())
    except (OSError, ValueError) as err:
        raise MapFileError(f"{js}: unreadable ({type(err).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != fmt:
        raise MapFileError(f"{js}: not a {fmt} file")
    if not npz.exists() or record.get("npz_sha256") != _sha256(npz):
        raise MapFileError(f"{npz}: missing or does not match {js.name}")
    with np.load(npz, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    if sorted(arrays) != record.get("arrays"):
        raise MapFileError(f"{npz}: holds other arrays than {js.name} lists")
    return record, arrays


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["MapFileError", "load_map", "ridge", "save_map"]
