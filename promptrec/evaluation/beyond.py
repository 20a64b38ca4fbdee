"""Beyond accuracy, with intervals over users: pure functions over per-user target ranks, top-k
lists and item popularity (docs/evaluation.md, "Beyond accuracy" and "Intervals").

- **Popularity tiers** (Abdollahpouri et al.'s head/mid/tail split by share of interactions): items
  are ordered by their interactions in the data the stage is fitted on (most first, ties by item
  index); **head** = the most popular items that together hold the first 20% of interactions (the
  item crossing 20% included), **tail** = the least popular items that together hold at most 20%
  (items without interactions always), **torso** = the rest.
- **Popularity bias of the lists**: Gini of exposure (how unequally the top-k slots of all users
  are spread over the whole catalog: 0 = every item shown equally often, 1 = one item takes
  every slot), ``tail_share`` (share of shown items in the tail tier), ``long_tail_share`` (share
  not in the head: APLT), ``avg_pop`` (mean interactions of a shown item, averaged per user: ARP).
- **Groups**: N@10 and R@10 by the target's tier, by user activity (history length at the stage,
  split into terciles of all users: light / medium / heavy) and by each attribute of a users file.
- **Intervals**: 95% percentile bootstrap over users (1,000 resamples of the users, seeded by the
  root seed; the same resamples for every row with the same users, so rows are compared paired).
  Coverage and the Gini of exposure are statistics of the whole set of lists, biased by resampling
  with replacement: theirs is ± 1.96 jackknife (leave-one-user-out) standard errors (:func:`jackknife_interval`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .metrics import DEFAULT_KS, _ranks, f1_at_k, mrr_at_k, ndcg_at_k, popularity_ranks, precision_at_k, recall_at_k

__all__ = [
    "ACTIVITY",
    "TIERS",
    "GroupContext",
    "jackknife_interval",
    "list_figures",
    "slot_share",
    "bootstrap_indices",
    "describe",
    "exposure_gini",
    "gini",
    "group_figures",
    "percentile_interval",
    "popularity_tiers",
    "activity_groups",
    "split_context",
    "statistic_interval",
]

TIERS = ("head", "torso", "tail")
ACTIVITY = ("light", "medium", "heavy")
N_BOOT = 1000
LEVEL = 0.95
GROUP_METRICS = ("N@10", "R@10")


def popularity_tiers(counts: np.ndarray, head_share: float = 0.2, tail_share: float = 0.2) -> np.ndarray:
    """Tier per item (0 head, 1 torso, 2 tail) from interaction counts (definition: module doc)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = len(counts)
    tiers = np.ones(n, dtype=np.int64)
    total = counts.sum()
    if total <= 0:
        tiers[:] = 2
        return tiers
    order = np.lexsort((np.arange(n), -counts))
    ordered = counts[order]
    before = np.cumsum(ordered) - ordered          # interactions of more popular items
    from_bottom = total - before                    # this item's and every less popular item's
    tiers[order[(before < head_share * total) & (ordered > 0)]] = 0
    tiers[order[(from_bottom <= tail_share * total) | (ordered <= 0)]] = 2
    return tiers


def activity_groups(lengths: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Activity group per user (0 light, 1 medium, 2 heavy) by history-length terciles of these users,
    and the two cut points (a user at a cut point belongs to the lower group)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    cuts = [float(np.quantile(lengths, 1 / 3)), float(np.quantile(lengths, 2 / 3))] if len(lengths) else [0.0, 0.0]
    return np.searchsorted(np.array(cuts), lengths, side="left").astype(np.int64), cuts


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = all equal; NaN when they sum to 0)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return float("nan")
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * total))


def exposure_gini(lists: Sequence[np.ndarray], n_items: int) -> float:
    """Gini of how often each catalog item appears in the lists (items never shown count as 0)."""
    shown = np.concatenate([np.asarray(r, dtype=np.int64) for r in lists]) if len(lists) else np.array([], np.int64)
    return gini(np.bincount(shown, minlength=n_items))


def bootstrap_indices(n: int, seed: int, n_boot: int = N_BOOT) -> np.ndarray:
    """``n_boot`` resamples (with replacement) of ``n`` users, seeded by ``seed`` alone."""
    return np.random.default_rng(seed).integers(0, max(n, 1), size=(n_boot, n)) if n else np.zeros((n_boot, 0), np.int64)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> list[float] | None:
    """The central ``level`` interval of bootstrap statistics (None when there are none)."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return None
    tail = (1 - level) / 2 * 100
    return [round(float(np.percentile(samples, tail)), 6), round(float(np.percentile(samples, 100 - tail)), 6)]


def _mean_interval(values: np.ndarray, idx: np.ndarray) -> list[float] | None:
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return None
    return percentile_interval(values[idx].mean(axis=1))


def _ratio_interval(num: np.ndarray, den: np.ndarray, idx: np.ndarray) -> list[float] | None:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if len(num) == 0:
        return None
    d = den[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return percentile_interval(np.where(d > 0, num[idx].sum(axis=1) / d, np.nan))


def per_user_metrics(ranks, ks: Sequence[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Each user's R@k, N@k, MRR@k, P@k and F1@k (their means are :func:`~.metrics.evaluate_rankings`)."""
    r = np.atleast_1d(_ranks(ranks))
    out = {}
    for k in ks:
        out[f"R@{k}"] = np.atleast_1d(recall_at_k(r, k))
        out[f"N@{k}"] = np.atleast_1d(ndcg_at_k(r, k))
        out[f"MRR@{k}"] = np.atleast_1d(mrr_at_k(r, k))
        out[f"P@{k}"] = np.atleast_1d(precision_at_k(r, k))
        out[f"F1@{k}"] = np.atleast_1d(f1_at_k(r, k))
    return out


@dataclass
class GroupContext:
    """What the groups of one stage are read from, indexed by the split's item and user indices.

    Build it once per stage with :meth:`for_stage`; rows on a sample of users share it, so their
    tiers and activity cut points are those of the whole population.
    """

    popularity: np.ndarray                      # interactions per item in the stage's fit data
    tiers: np.ndarray                           # per item: 0 head, 1 torso, 2 tail
    activity: np.ndarray                        # per user: 0 light, 1 medium, 2 heavy
    activity_cuts: list[float]
    attributes: list[dict[str, str]] | None = None   # per user, from a users file
    seed: int = 0
    pop_ranks: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.pop_ranks = popularity_ranks(self.popularity)

    @classmethod
    def for_stage(cls, popularity: np.ndarray, history_lengths: np.ndarray, seed: int,
                  users: Sequence[str] | None = None, user_attributes: Mapping[str, Mapping[str, str]] | None = None
                  ) -> GroupContext:
        """From the stage's item popularity and every user's history length (and a users file's
        attributes, by user id, when the dataset has one)."""
        activity, cuts = activity_groups(history_lengths)
        attributes = None
        if user_attributes and users is not None:
            attributes = [dict(user_attributes.get(u, {})) for u in users]
        return cls(np.asarray(popularity, dtype=np.float64), popularity_tiers(popularity), activity, cuts,
                   attributes, seed)

    @property
    def n_items(self) -> int:
        return len(self.popularity)

    def describe_groups(self) -> dict:
        """The definitions behind the groups, for a result's ``meta``."""
        counts = np.bincount(self.tiers, minlength=3)
        share = [float(self.popularity[self.tiers == t].sum() / max(self.popularity.sum(), 1)) for t in range(3)]
        c1, c2 = self.activity_cuts
        return {"tiers": {t: {"items": int(counts[n]), "interaction_share": round(share[n], 4)} for n, t in enumerate(TIERS)},
                "activity": {"light": f"history <= {c1:g}", "medium": f"{c1:g} < history <= {c2:g}",
                             "heavy": f"history > {c2:g}"},
                "attributes": sorted({a for attrs in self.attributes or [] for a in attrs})}


def group_figures(values: Mapping[str, np.ndarray], groups: np.ndarray, labels: Sequence[str], seed: int,
                  n_boot: int = N_BOOT) -> dict[str, dict]:
    """Per group label: user count, the mean of each per-user value and its bootstrap interval
    (resampling the group's own users). Groups without users are left out."""
    out = {}
    for code, label in enumerate(labels):
        members = np.flatnonzero(np.asarray(groups) == code)
        if len(members) == 0:
            continue
        idx = bootstrap_indices(len(members), seed, n_boot)
        entry: dict = {"users": int(len(members))}
        intervals = {}
        for name, v in values.items():
            mine = np.asarray(v, dtype=np.float64)[members]
            entry[name] = float(mine.mean())
            intervals[name] = _mean_interval(mine, idx)
        entry["intervals"] = intervals
        out[label] = entry
    return out


def describe(ranks, targets: Sequence[int], lists: Sequence[np.ndarray] | None, context: GroupContext,
             users: Sequence[int] | None = None, ks: Sequence[int] = DEFAULT_KS,
             n_boot: int = N_BOOT) -> dict:
    """Every figure of one row, with its interval, and the row's groups.

    Args:
        ranks: 0-based target rank per user (``inf``/``None`` = not ranked).
        targets: The target's item index per user.
        lists: Each user's top-k item indices (None: no list figures).
        context: The stage's popularity, tiers, activity groups and user attributes.
        users: The split's user index of each row entry (default: 0..n-1, every user in order).

    Returns:
        ``{"metrics", "intervals", "groups"}``: ``metrics`` adds to the means of
        :func:`~.metrics.evaluate_rankings` ``gini``, ``tail_share``, ``long_tail_share`` and
        ``avg_pop`` (with lists); ``intervals`` maps every metric but ``n_users`` to its 95%
        bootstrap interval; ``groups`` holds ``target_tier``, ``activity`` and, with a users file,
        ``attribute:NAME`` figures (N@10 and R@10 per group).
    """
    per_user = per_user_metrics(ranks, ks)
    n = len(next(iter(per_user.values())))
    users = np.arange(n) if users is None else np.asarray(users, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if len(users) != n or len(targets) != n:
        raise ValueError(f"{n} ranks but {len(users)} users and {len(targets)} targets")
    idx = bootstrap_indices(n, context.seed, n_boot)
    metrics: dict[str, float] = {"n_users": float(n)}
    intervals: dict[str, list[float] | None] = {}
    for name, values in per_user.items():
        metrics[name] = float(values.mean()) if n else float("nan")
        intervals[name] = _mean_interval(values, idx)
    if lists is not None:
        if len(lists) != n:
            raise ValueError(f"{n} ranks but {len(lists)} lists")
        _list_figures(lists, context, idx, metrics, intervals)
    groups: dict[str, dict] = {}
    chosen = {m: per_user[m] for m in GROUP_METRICS if m in per_user}
    groups["target_tier"] = group_figures(chosen, context.tiers[targets], TIERS, context.seed, n_boot)
    groups["activity"] = group_figures(chosen, context.activity[users], ACTIVITY, context.seed, n_boot)
    if context.attributes:
        names = sorted({a for attrs in context.attributes for a in attrs})
        for name in names:
            values = [context.attributes[u].get(name, "unknown") for u in users]
            labels = sorted(set(values))
            codes = np.array([labels.index(v) for v in values], dtype=np.int64)
            groups[f"attribute:{name}"] = group_figures(chosen, codes, labels, context.seed, n_boot)
    return {"metrics": metrics, "intervals": intervals, "groups": groups}


def list_figures(lists: Sequence[np.ndarray], context: GroupContext, n_boot: int = N_BOOT) -> tuple[dict, dict]:
    """The popularity bias of ``lists`` (one per user, item indices of ``context``): ``(figures, intervals)`` for
    gini, coverage, tail_share, long_tail_share, avg_pop and pop_rank (definitions: module doc)."""
    metrics: dict[str, float] = {}
    intervals: dict = {}
    _list_figures(lists, context, bootstrap_indices(len(lists), context.seed, n_boot), metrics, intervals)
    return metrics, intervals


def slot_share(hits: np.ndarray, lengths: np.ndarray, seed: int, n_boot: int = N_BOOT) -> tuple[float, list[float] | None]:
    """A share of list slots (e.g. slots given to new items): ``hits`` and ``lengths`` per user; the share over all
    slots and its bootstrap interval over users, as the list figures' shares."""
    hits, lengths = np.asarray(hits, dtype=np.float64), np.asarray(lengths, dtype=np.float64)
    share = float(hits.sum() / lengths.sum()) if lengths.sum() else float("nan")
    return share, _ratio_interval(hits, lengths, bootstrap_indices(len(hits), seed, n_boot))


def _list_figures(lists: Sequence[np.ndarray], context: GroupContext, idx: np.ndarray,
                  metrics: dict[str, float], intervals: dict) -> None:
    k = max((len(r) for r in lists), default=0)
    padded = np.full((len(lists), max(k, 1)), -1, dtype=np.int64)
    for u, r in enumerate(lists):
        padded[u, : len(r)] = np.asarray(r, dtype=np.int64)
    shown = padded >= 0
    safe = np.where(shown, padded, 0)
    length = shown.sum(axis=1).astype(np.float64)
    tiers = context.tiers[safe]
    sums = {
        "pop_rank": np.where(shown, context.pop_ranks[safe], 0).sum(axis=1),
        "tail_share": (shown & (tiers == 2)).sum(axis=1),
        "long_tail_share": (shown & (tiers != 0)).sum(axis=1),
    }
    # pop_rank keeps evaluate_rankings' definition (mean over every shown item); the shares likewise
    for name, num in sums.items():
        metrics[name] = float(num.sum() / length.sum()) if length.sum() else float("nan")
        intervals[name] = _ratio_interval(num, length, idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        arp = np.where(length > 0, np.where(shown, context.popularity[safe], 0).sum(axis=1) / length, np.nan)
    has = np.isfinite(arp)
    metrics["avg_pop"] = float(arp[has].mean()) if has.any() else float("nan")
    intervals["avg_pop"] = percentile_interval(np.nanmean(arp[idx], axis=1)) if has.any() else None
    n_items = context.n_items

    counts = np.bincount(padded[shown], minlength=n_items)
    metrics["coverage"] = float((counts > 0).sum() / n_items)
    metrics["gini"] = gini(counts)
    # leave-one-user-out: that user's list taken out of the exposure counts
    loo_cov, loo_gini = [], []
    for u in range(len(lists)):
        mine = padded[u][shown[u]]
        rest = counts.copy()
        np.subtract.at(rest, mine, 1)
        loo_cov.append((rest > 0).sum() / n_items)
        loo_gini.append(gini(rest))
    intervals["coverage"] = jackknife_interval(metrics["coverage"], np.array(loo_cov))
    intervals["gini"] = jackknife_interval(metrics["gini"], np.array(loo_gini))


def jackknife_interval(estimate: float, leave_one_out: np.ndarray, z: float = 1.959964) -> list[float] | None:
    """``estimate ± z·SE`` with the jackknife standard error over users: for statistics of the whole
    set of lists (coverage, Gini of exposure), which resampling users with replacement biases
    (a repeated user shows no new item), so a percentile bootstrap would not hold the estimate."""
    values = np.asarray(leave_one_out, dtype=np.float64)
    n = len(values)
    if n < 2 or not np.isfinite(estimate) or not np.isfinite(values).all():
        return None
    se = float(np.sqrt((n - 1) / n * np.sum((values - values.mean()) ** 2)))
    return [round(estimate - z * se, 6), round(estimate + z * se, 6)]


def statistic_interval(statistic: Callable[[np.ndarray], float], n: int, seed: int,
                       n_boot: int = N_BOOT) -> list[float] | None:
    """The bootstrap interval of any statistic of a subset of ``n`` users (given their positions)."""
    idx = bootstrap_indices(n, seed, n_boot)
    return percentile_interval(np.array([statistic(row) for row in idx])) if n else None


def split_context(split, stage: str, seed: int, user_attributes: Mapping[str, Mapping[str, str]] | None = None
                  ) -> GroupContext:
    """The :class:`GroupContext` of one stage of a :class:`~.splits.LeaveLastOutSplit`: popularity from
    the stage's fit data, history lengths at the stage, attributes of a users file by user id."""
    popularity = np.asarray(split.fit_matrix(stage).sum(axis=0)).ravel()
    histories, _ = split.sequences(stage)
    lengths = np.array([len(h) for h in histories], dtype=np.float64)
    return GroupContext.for_stage(popularity, lengths, seed, split.users, user_attributes)
