"""95% bootstrap intervals over users (percentile method, seeded), for a mean and for a paired difference."""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_interval", "paired_difference"]


def _resampled_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n_boot, len(values)))
    return values[draws].mean(axis=1)


def bootstrap_interval(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean of per-user ``values`` with its bootstrap interval: ``{"mean", "lo", "hi", "n"}``."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    means = _resampled_means(values, n_boot, seed)
    tail = (1 - level) / 2 * 100
    return {"mean": float(values.mean()), "lo": float(np.percentile(means, tail)),
            "hi": float(np.percentile(means, 100 - tail)), "n": int(len(values))}


def paired_difference(a, b, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean of ``a - b`` over the same users, with its bootstrap interval (users resampled together)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same users: {a.shape} vs {b.shape}")
    return bootstrap_interval(a - b, n_boot, seed, level)
