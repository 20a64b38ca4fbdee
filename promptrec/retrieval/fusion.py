"""Knowledge fusion: per-source scores over a candidate pool, normalised and weighted.

R = g(U, C): each source (embedding similarity, EASE, transitions, ...) scores the pooled
candidates; each source's scores are standardised over the pool (so weights are comparable),
then summed with the configured weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def standardize(values: np.ndarray) -> np.ndarray:
    """z-scores over the pool; missing (non-finite) values count as the pool's minimum; a constant source gives zeros."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros_like(values)
    values = np.where(finite, values, values[finite].min())
    std = values.std()
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


def fuse(source_scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Weighted sum of standardised source scores.

    Args:
        source_scores: Per source, raw scores aligned with the pool (missing values as -inf/nan).
        weights: Per source weight; sources without a weight, or weight 0, are left out.

    Returns:
        The fused score per pool item, and each used source's standardised scores.
    """
    n = len(next(iter(source_scores.values()))) if source_scores else 0
    fused = np.zeros(n)
    normalised: dict[str, np.ndarray] = {}
    for name, scores in source_scores.items():
        weight = float(weights.get(name, 0.0))
        if weight == 0.0:
            continue
        normalised[name] = standardize(scores)
        fused += weight * normalised[name]
    return fused, normalised


def restrict_pool(items: Sequence[str], sources: Mapping[str, np.ndarray], weights: Mapping[str, float],
                  depth: int | None) -> tuple[list[str], dict[str, np.ndarray]]:
    """The pool the product builds at pool depth ``depth`` from a deeper pool collected with
    ``every_source=True``: the top ``depth`` of each source with a non-zero weight (``None``: as collected)."""
    if depth is None:
        return list(items), dict(sources)
    keep = np.zeros(len(items), dtype=bool)
    for name, weight in weights.items():
        if weight > 0 and name in sources:
            scores = np.nan_to_num(np.asarray(sources[name], dtype=np.float64), nan=-np.inf)
            top = np.argsort(-scores, kind="stable")[:depth]
            keep[top[np.isfinite(scores[top])]] = True  # an item a source cannot score is not in its top
    index = np.flatnonzero(keep)
    return [items[i] for i in index], {name: np.asarray(s)[index] for name, s in sources.items()}
