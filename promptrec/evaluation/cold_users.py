"""Protocol D, cold users: a user the models have never seen, known by their first ``n`` items.

The users are split into ``folds`` seeded folds; each fold in turn is cold: every model is fitted on
the other folds' users (all of their 5-core interactions), and each cold user's history is their
first ``n`` interactions in (timestamp, item id) order. The targets are all of the user's remaining
items, ranked among all items with the ``n`` history items excluded, with the multi-target R@K and
N@K of :mod:`~promptrec.evaluation.cold_start`. Users with no item after the first ``n`` are left out
(with 5-core data, only users with exactly 5 items at ``n = 5``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..collab.base import ItemScorer, interaction_matrix
from .cold_start import KS, multi_target_metrics
from .splits import LeaveLastOutSplit

__all__ = ["ColdUserFold", "RowScorer", "cold_user_folds", "cold_user_metrics", "scorer_row"]


@dataclass
class ColdUserFold:
    """Fit data (the other users) and the cold users of one fold."""

    n_items: int
    matrix: sp.csr_matrix
    sequences: list[np.ndarray]
    times: list[np.ndarray]
    cold_sequences: list[np.ndarray]
    cold_times: list[np.ndarray]
    cold_users: list[str]

    def cut(self, n: int) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """``(users, histories, times, targets)`` for histories of the first ``n`` items."""
        users, histories, times, targets = [], [], [], []
        for user, seq, stamps in zip(self.cold_users, self.cold_sequences, self.cold_times):
            rest = np.setdiff1d(seq[n:], seq[:n])
            if len(rest):
                users.append(user)
                histories.append(seq[:n])
                times.append(stamps[:n])
                targets.append(rest)
        return users, histories, times, targets


def cold_user_folds(split: LeaveLastOutSplit, folds: int = 5, seed: int = 0) -> list[ColdUserFold]:
    """The ``folds`` seeded cold-user folds of ``split``'s users."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    seqs = [np.append(split.train[u], [split.valid_target[u], split.test_target[u]]) for u in range(split.n_users)]
    stamps = [np.append(split.train_times[u], [split.valid_time[u], split.test_time[u]]) for u in range(split.n_users)]
    fold_of = np.random.default_rng(seed).permutation(split.n_users) % folds
    out = []
    for f in range(folds):
        warm = np.flatnonzero(fold_of != f)
        cold = np.flatnonzero(fold_of == f)
        out.append(ColdUserFold(
            split.n_items, interaction_matrix([seqs[u] for u in warm], split.n_items),
            [seqs[u] for u in warm], [stamps[u] for u in warm],
            [seqs[u] for u in cold], [stamps[u] for u in cold], [split.users[u] for u in cold]))
    return out


Scores = Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], np.ndarray]
RowScorer = Callable[[ColdUserFold], Scores]  # fitted on a fold, then scores (histories, times) -> rows


def scorer_row(make: Callable[[], ItemScorer]) -> RowScorer:
    """A row from a collaborative scorer: fitted on the fold's other users, scoring the cut histories."""
    def fit(fold: ColdUserFold) -> Scores:
        scorer = make().fit(fold.matrix, fold.sequences, fold.times)
        return lambda histories, times: np.vstack([scorer.score(histories[i : i + 512], times[i : i + 512])
                                                   for i in range(0, len(histories), 512)])
    return fit


def cold_user_metrics(folds: Sequence[ColdUserFold], rows: Mapping[str, RowScorer], cuts: Sequence[int] = (1, 3, 5),
                      ks: Sequence[int] = KS, progress=None) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """Per cut ``n``, per row, per-user metrics pooled over the folds (users in fold order)."""
    out: dict[int, dict[str, dict[str, list]]] = {n: {name: {} for name in rows} for n in cuts}
    everything = np.arange(folds[0].n_items) if folds else np.arange(0)
    for fold in folds:
        cut = {n: fold.cut(n) for n in cuts}
        for name, fit in rows.items():
            score = fit(fold)
            for n in cuts:
                _, histories, times, targets = cut[n]
                metrics = multi_target_metrics(score(histories, times), targets, everything, exclude=histories, ks=ks)
                for key, values in metrics.items():
                    out[n][name].setdefault(key, []).append(values)
            if progress:
                progress(1)
    return {n: {name: {key: np.concatenate(parts) for key, parts in by.items()} for name, by in rows_.items()}
            for n, rows_ in out.items()}
