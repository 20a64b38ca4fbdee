"""Ranking metrics for one held-out target per user.

Every per-user metric is a function of the target's 0-based rank (``np.inf`` or ``None``
when the target is not ranked at all, e.g. it is excluded or missing from a candidate list).

Tie rule (used by :func:`rank_of_target` and :func:`top_k`): items are ordered by score,
highest first; items with equal scores are ordered by item index, lowest first. Excluded items
and NaN scores are never ranked. The rule is deterministic and neither optimistic nor
pessimistic for the target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "DEFAULT_KS",
    "catalog_coverage",
    "evaluate_rankings",
    "f1_at_k",
    "mean_popularity_rank",
    "mrr_at_k",
    "ndcg_at_k",
    "popularity_ranks",
    "precision_at_k",
    "rank_of_target",
    "recall_at_k",
    "top_k",
]

DEFAULT_KS = (1, 5, 10, 20)
RankLike = float | int | None | Sequence[float | int | None] | np.ndarray


def _ranks(rank: RankLike) -> np.ndarray:
    arr = np.asarray(rank, dtype=object)
    flat = [np.inf if r is None else float(r) for r in arr.ravel()]
    return np.array(flat, dtype=float).reshape(arr.shape)


def _hit(rank: RankLike, k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return _ranks(rank) < k


def _finish(values: np.ndarray) -> np.ndarray | float:
    return float(values) if values.ndim == 0 else values


def recall_at_k(rank: RankLike, k: int) -> np.ndarray | float:
    """Recall@k (= hit rate@k with one target): 1 if rank < k else 0."""
    return _finish(_hit(rank, k).astype(float))


def precision_at_k(rank: RankLike, k: int) -> np.ndarray | float:
    """Precision@k with one target: 1/k if rank < k else 0."""
    return _finish(_hit(rank, k) / k)


def f1_at_k(rank: RankLike, k: int) -> np.ndarray | float:
    """F1@k with one target: 2PR/(P+R) = 2/(k+1) on a hit, else 0."""
    return _finish(_hit(rank, k) * (2.0 / (k + 1)))


def ndcg_at_k(rank: RankLike, k: int) -> np.ndarray | float:
    """NDCG@k with one relevant item (ideal DCG = 1): 1/log2(rank+2) if rank < k else 0."""
    r = _ranks(rank)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = 1.0 / np.log2(np.where(np.isfinite(r), r, 0.0) + 2.0)
    return _finish(np.where(_hit(r, k), gain, 0.0))


def mrr_at_k(rank: RankLike, k: int) -> np.ndarray | float:
    """Reciprocal rank cut at k: 1/(rank+1) if rank < k else 0."""
    r = _ranks(rank)
    return _finish(np.where(_hit(r, k), 1.0 / (np.where(np.isfinite(r), r, 0.0) + 1.0), 0.0))


def _masked(scores: np.ndarray, exclude: Sequence[np.ndarray] | None) -> np.ndarray:
    s = np.array(scores, dtype=np.float64, copy=True, ndmin=2)
    s[np.isnan(s)] = -np.inf
    if exclude is not None:
        if len(exclude) != s.shape[0]:
            raise ValueError(f"{len(exclude)} exclusion lists for {s.shape[0]} score rows")
        rows = np.repeat(np.arange(s.shape[0]), [len(e) for e in exclude])
        cols = (
            np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude]) if len(rows) else rows
        )
        s[rows, cols] = -np.inf
    return s


def rank_of_target(
    scores: np.ndarray, target: np.ndarray | int, exclude: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """0-based rank of each row's target among the non-excluded items (tie rule: module doc).

    Args:
        scores: Score rows, shape (n_users, n_items) or (n_items,).
        target: Target item index per row.
        exclude: Per row, item indices that are not ranked (the user's history).

    Returns:
        Float ranks, shape (n_users,); ``np.inf`` where the target is excluded or scored NaN.
    """
    s = _masked(scores, exclude)
    t = np.atleast_1d(np.asarray(target, dtype=np.int64))
    rows = np.arange(s.shape[0])
    ts = s[rows, t][:, None]
    ahead = (s > ts) | ((s == ts) & (np.arange(s.shape[1])[None, :] < t[:, None]))
    ranks = ahead.sum(axis=1).astype(float)
    ranks[np.isneginf(ts[:, 0])] = np.inf
    return ranks


def top_k(
    scores: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """Top-k item indices per row (tie rule: module doc), excluded items and NaN scores left out.

    Returns:
        One array per row of at most k item indices, best first.
    """
    s = _masked(scores, exclude)
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < s.shape[1] else None
    out = []
    for u in range(s.shape[0]):
        row = s[u]
        if part is not None:
            kth = row[part[u]].min()
            cand = np.flatnonzero(row >= kth)
        else:
            cand = np.arange(s.shape[1])
        cand = cand[np.isfinite(row[cand])]
        order = np.lexsort((cand, -row[cand]))
        out.append(cand[order][:k])
    return out


def catalog_coverage(rec_lists: Sequence[np.ndarray], n_items: int) -> float:
    """Fraction of the catalog that appears in at least one recommendation list."""
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    seen = np.unique(np.concatenate([np.asarray(r, dtype=np.int64) for r in rec_lists]))
    return float(len(seen) / n_items)


def popularity_ranks(popularity_counts: np.ndarray) -> np.ndarray:
    """1-based popularity rank per item: 1 = most interactions, ties by lower item index."""
    counts = np.asarray(popularity_counts)
    order = np.lexsort((np.arange(len(counts)), -counts))
    ranks = np.empty(len(counts), dtype=np.int64)
    ranks[order] = np.arange(1, len(counts) + 1)
    return ranks


def mean_popularity_rank(rec_lists: Sequence[np.ndarray], popularity_counts: np.ndarray) -> float:
    """Mean popularity rank (1 = most popular) over every recommended item of every list."""
    recs = np.concatenate([np.asarray(r, dtype=np.int64) for r in rec_lists])
    if len(recs) == 0:
        return float("nan")
    return float(popularity_ranks(popularity_counts)[recs].mean())


def evaluate_rankings(
    ranks: RankLike,
    ks: Sequence[int] = DEFAULT_KS,
    rec_lists: Sequence[np.ndarray] | None = None,
    n_items: int | None = None,
    popularity_counts: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean metrics over users.

    Args:
        ranks: 0-based target rank per user (``np.inf``/``None`` = not ranked).
        ks: Cut-offs.
        rec_lists: Optional top-k lists, for coverage and popularity bias.
        n_items: Catalog size, needed with ``rec_lists`` for ``coverage``.
        popularity_counts: Interactions per item, for ``pop_rank`` with ``rec_lists``.

    Returns:
        ``{"R@k", "N@k", "MRR@k", "P@k", "F1@k"}`` for each k, plus ``n_users`` and, when
        asked for, ``coverage`` and ``pop_rank``.
    """
    r = np.atleast_1d(_ranks(ranks))
    out: dict[str, float] = {"n_users": float(len(r))}
    for k in ks:
        out[f"R@{k}"] = float(np.mean(recall_at_k(r, k)))
        out[f"N@{k}"] = float(np.mean(ndcg_at_k(r, k)))
        out[f"MRR@{k}"] = float(np.mean(mrr_at_k(r, k)))
        out[f"P@{k}"] = float(np.mean(precision_at_k(r, k)))
        out[f"F1@{k}"] = float(np.mean(f1_at_k(r, k)))
    if rec_lists is not None and n_items is not None:
        out["coverage"] = catalog_coverage(rec_lists, n_items)
    if rec_lists is not None and popularity_counts is not None:
        out["pop_rank"] = mean_popularity_rank(rec_lists, popularity_counts)
    return out
