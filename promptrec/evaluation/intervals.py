"""95% bootstrap intervals over users for a mean and for a paired difference, in the ``{mean, lo, hi, n}``
shape Protocol D reports; the resampling is :mod:`promptrec.evaluation.beyond`'s."""

from __future__ import annotations

import numpy as np

from .beyond import bootstrap_indices, percentile_interval

__all__ = ["bootstrap_interval", "paired_difference"]


def bootstrap_interval(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean of per-user ``values`` with its bootstrap interval: ``{"mean", "lo", "hi", "n"}``."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    lo, hi = percentile_interval(values[bootstrap_indices(len(values), seed, n_boot)].mean(axis=1), level)
    return {"mean": float(values.mean()), "lo": lo, "hi": hi, "n": int(len(values))}


def paired_difference(a, b, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean of ``a - b`` over the same users, with its bootstrap interval (users resampled together)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same users: {a.shape} vs {b.shape}")
    return bootstrap_interval(a - b, n_boot, seed, level)
