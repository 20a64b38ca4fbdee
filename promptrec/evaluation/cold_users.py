"""Protocol D, cold users: a user the models have never seen, known by their first ``n`` items.

The users are split into ``folds`` seeded folds; each fold in turn is cold: every model is fitted on
the other folds' users (all of their 5-core interactions), and each cold user's history is their
first ``n`` interactions in (timestamp, item id) order. The targets are all of the user's remaining
items, ranked among all items with the ``n`` history items excluded, with the multi-target R@K and
N@K of :mod:`~promptrec.evaluation.cold_start`. Users with no item after the first ``n`` are left out
(with 5-core data, only users with exactly 5 items at ``n = 5``).

Beyond accuracy (:func:`cold_user_beyond`): the popularity bias of each row's top lists, N@20 by the
popularity tier of the targets (each user scored on their targets of that tier alone) and by how active
the cold user goes on to be (terciles of every user's whole 5-core history); popularity and tiers from
every user's 5-core interactions (:func:`cold_user_context`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..collab.base import ItemScorer, interaction_matrix
from .beyond import ACTIVITY, TIERS, GroupContext, _mean_interval, bootstrap_indices, group_figures, list_figures
from .cold_start import KS, list_metrics, ranked_lists
from .splits import LeaveLastOutSplit

__all__ = ["ColdUserFold", "RowScorer", "cold_user_beyond", "cold_user_context", "cold_user_folds", "cold_user_metrics",
           "scorer_row"]


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
    cold_index: list[int]  # the cold users' indices in the split

    def cut(self, n: int) -> tuple[list[int], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """``(users, histories, times, targets)`` for histories of the first ``n`` items (users: split indices)."""
        users, histories, times, targets = [], [], [], []
        for user, seq, stamps in zip(self.cold_index, self.cold_sequences, self.cold_times):
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
            [seqs[u] for u in cold], [stamps[u] for u in cold], [split.users[u] for u in cold], cold.tolist()))
    return out


def cold_user_context(split: LeaveLastOutSplit, seed: int = 0) -> GroupContext:
    """Groups for cold users: item popularity and tiers from every user's 5-core interactions, activity from the
    terciles of every user's whole 5-core history (how active a cold user goes on to be)."""
    seqs = [np.append(split.train[u], [split.valid_target[u], split.test_target[u]]) for u in range(split.n_users)]
    popularity = np.bincount(np.concatenate(seqs), minlength=split.n_items) if seqs else np.zeros(split.n_items)
    return GroupContext.for_stage(popularity, np.array([len(s) for s in seqs]), seed)


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
                      ks: Sequence[int] = KS, progress=None, lists: bool = False
                      ) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """Per cut ``n``, per row, per-user metrics pooled over the folds (users in fold order); with ``lists``, also
    ``"top"``: each user's top ``max(ks)`` among all items (users x k item indices, -1 pads)."""
    out: dict[int, dict[str, dict[str, list]]] = {n: {name: {} for name in rows} for n in cuts}
    everything = np.arange(folds[0].n_items) if folds else np.arange(0)
    for fold in folds:
        cut = {n: fold.cut(n) for n in cuts}
        for name, fit in rows.items():
            score = fit(fold)
            for n in cuts:
                _, histories, times, targets = cut[n]
                top = ranked_lists(score(histories, times), everything, max(ks), exclude=histories)
                for key, values in list_metrics(top, targets, ks).items():
                    out[n][name].setdefault(key, []).append(values)
                if lists:
                    out[n][name].setdefault("top", []).append(top)
            if progress:
                progress(1)
    return {n: {name: {key: np.concatenate(parts) for key, parts in by.items()} for name, by in rows_.items()}
            for n, rows_ in out.items()}


def cold_user_beyond(folds: Sequence[ColdUserFold], n: int, found: Mapping[str, np.ndarray], context: GroupContext,
                     n_boot: int = 1000) -> dict:
    """Beyond accuracy of one row at cut ``n`` (``found``: that cut's pooled results of
    :func:`cold_user_metrics` with ``lists``): the popularity bias of the top lists (Gini of exposure, coverage,
    tail and long-tail share, average popularity), N@k by target tier (each user scored on their targets in the
    tier alone; users with none there are left out of it) and N@k by user activity; each with its 95% interval
    over users (``context``: :func:`cold_user_context`)."""
    top = np.asarray(found["top"])
    k = top.shape[1]
    users, targets = [], []
    for fold in folds:
        index, _, _, wanted = fold.cut(n)
        users += index
        targets += wanted
    if len(users) != len(top):
        raise ValueError(f"{len(top)} lists but {len(users)} cold users at n = {n}")
    figures, intervals = list_figures([row[row >= 0] for row in top], context, n_boot)
    metric = f"N@{k}"
    tiers = {}
    for code, tier in enumerate(TIERS):
        members = [u for u, tgt in enumerate(targets) if (context.tiers[tgt] == code).any()]
        if not members:
            continue
        values = list_metrics(top[members], [targets[u][context.tiers[targets[u]] == code] for u in members],
                              (k,))[metric]
        tiers[tier] = {"users": len(members), metric: float(values.mean()),
                       "intervals": {metric: _mean_interval(values, bootstrap_indices(len(values), context.seed, n_boot))}}
    activity = group_figures({metric: found[metric]}, context.activity[np.asarray(users, dtype=np.int64)], ACTIVITY,
                             context.seed, n_boot)
    return {"lists": figures, "intervals": intervals, "target_tier": tiers, "activity": activity,
            "activity_cuts": [float(c) for c in context.activity_cuts], "k": int(k), "metric": metric}
