"""Data splits of the evaluation protocol (docs/evaluation.md).

Protocol A: iterative k-core, then leave-last-out per user in (timestamp, item id) order.
Protocol B: the test (or validation) target plus uniformly sampled unseen items.

Interactions are the frame of the product's :class:`~promptrec.data.InteractionLog` (loaded by
:func:`promptrec.data.load_dataset`): ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int,
unix seconds) and ``rating`` (float, may be NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..collab.base import interaction_matrix

__all__ = [
    "LeaveLastOutSplit",
    "Stage",
    "id_sort_key",
    "k_core",
    "leave_last_out",
    "protocol_a_split",
    "sampled_candidates",
    "truncate_last",
]

Stage = Literal["valid", "test"]
def _check_frame(df: pd.DataFrame) -> None:
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in df.columns]
    if missing:
        raise ValueError(f"interaction frame lacks columns {missing}; has {list(df.columns)}")


def id_sort_key(ids: list[str] | np.ndarray) -> list[str]:
    """Sort ids numerically when every id is a non-negative integer string, else lexicographically.

    Args:
        ids: Distinct ids.

    Returns:
        The ids in sorted order.
    """
    values = [str(i) for i in ids]
    if all(v.isdigit() for v in values):
        return sorted(values, key=lambda v: (int(v), v))
    return sorted(values)


def k_core(df: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Iterative k-core: drop items with < k rows, then users with < k rows, until stable.

    Args:
        df: Interaction frame.
        k: Minimum number of interactions per item and per user.

    Returns:
        The surviving rows (original index kept).
    """
    _check_frame(df)
    out = df
    while True:
        before = len(out)
        out = out[out["item_id"].map(out["item_id"].value_counts()).to_numpy() >= k]
        out = out[out["user_id"].map(out["user_id"].value_counts()).to_numpy() >= k]
        if len(out) == before:
            return out


@dataclass
class LeaveLastOutSplit:
    """Per-user leave-last-out split over integer user and item indices.

    Attributes:
        users: User ids; position is the user index.
        items: Item ids; position is the item index (numeric order when ids are numeric).
        item_index: Item id -> item index.
        train: Per user, training item indices in (timestamp, item id) order.
        train_times: Per user, the timestamps matching ``train``.
        valid_target: Per user, the second-to-last item (validation target).
        test_target: Per user, the last item (test target).
        valid_time: Timestamps of the validation targets.
        test_time: Timestamps of the test targets.
    """

    users: list[str]
    items: list[str]
    item_index: dict[str, int]
    train: list[np.ndarray]
    train_times: list[np.ndarray]
    valid_target: np.ndarray
    test_target: np.ndarray
    valid_time: np.ndarray
    test_time: np.ndarray

    @property
    def n_users(self) -> int:
        """Number of users."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of catalog items."""
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        """Number of interactions, targets included."""
        return int(sum(len(t) for t in self.train)) + 2 * self.n_users

    def history(self, user_idx: int, stage: Stage) -> np.ndarray:
        """Ordered history available when predicting ``stage``'s target.

        Args:
            user_idx: User index.
            stage: ``"valid"`` (train items) or ``"test"`` (train items + validation item).

        Returns:
            Item indices in time order.
        """
        _check_stage(stage)
        if stage == "valid":
            return self.train[user_idx]
        return np.append(self.train[user_idx], self.valid_target[user_idx])

    def history_times(self, user_idx: int, stage: Stage) -> np.ndarray:
        """Timestamps matching :meth:`history`."""
        _check_stage(stage)
        if stage == "valid":
            return self.train_times[user_idx]
        return np.append(self.train_times[user_idx], self.valid_time[user_idx])

    def sequences(self, stage: Stage) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """All users' ordered histories and their timestamps for ``stage``.

        Returns:
            ``(histories, times)``, two lists indexed by user.
        """
        histories = [self.history(u, stage) for u in range(self.n_users)]
        times = [self.history_times(u, stage) for u in range(self.n_users)]
        return histories, times

    def targets(self, stage: Stage) -> np.ndarray:
        """Target item per user for ``stage``."""
        _check_stage(stage)
        return self.valid_target if stage == "valid" else self.test_target

    def target_times(self, stage: Stage) -> np.ndarray:
        """Target timestamp per user for ``stage``."""
        _check_stage(stage)
        return self.valid_time if stage == "valid" else self.test_time

    def fit_matrix(self, stage: Stage) -> sp.csr_matrix:
        """Binary user x item matrix of the data available at ``stage`` (all users).

        Returns:
            CSR matrix of float64 ones, shape (n_users, n_items).
        """
        histories, _ = self.sequences(stage)
        return interaction_matrix(histories, self.n_items)


def _check_stage(stage: str) -> None:
    if stage not in ("valid", "test"):
        raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")


def leave_last_out(df: pd.DataFrame) -> LeaveLastOutSplit:
    """Split each user's interactions: last = test, second-to-last = validation, rest = train.

    Interactions are ordered by (timestamp, item id); equal timestamps are broken by the
    item id, numerically when all item ids are integer strings, else lexicographically.

    Args:
        df: Interaction frame (usually already k-cored). Every user needs >= 3 rows.

    Returns:
        The split.

    Raises:
        ValueError: If a column is missing or a user has fewer than 3 interactions.
    """
    _check_frame(df)
    item_ids = df["item_id"].astype(str).to_numpy()
    user_ids = df["user_id"].astype(str).to_numpy()
    items = id_sort_key(pd.unique(item_ids))
    users = id_sort_key(pd.unique(user_ids))
    item_index = {item: i for i, item in enumerate(items)}
    user_index = {user: u for u, user in enumerate(users)}
    item_codes = np.array([item_index[i] for i in item_ids], dtype=np.int64)
    user_codes = np.array([user_index[u] for u in user_ids], dtype=np.int64)
    stamps = df["timestamp"].to_numpy(dtype=np.int64)

    order = np.lexsort((item_codes, stamps, user_codes))
    item_codes, stamps, user_codes = item_codes[order], stamps[order], user_codes[order]
    counts = np.bincount(user_codes, minlength=len(users))
    if len(counts) and counts.min() < 3:
        short = users[int(np.argmin(counts))]
        raise ValueError(f"user {short!r} has {counts.min()} interactions; leave-last-out needs 3")
    bounds = np.cumsum(counts)[:-1]
    return _from_sequences(
        users, items, item_index, np.split(item_codes, bounds), np.split(stamps, bounds)
    )


def _from_sequences(
    users: list[str],
    items: list[str],
    item_index: dict[str, int],
    seqs: list[np.ndarray],
    times: list[np.ndarray],
) -> LeaveLastOutSplit:
    return LeaveLastOutSplit(
        users=users,
        items=items,
        item_index=item_index,
        train=[s[:-2] for s in seqs],
        train_times=[t[:-2] for t in times],
        valid_target=np.array([s[-2] for s in seqs], dtype=np.int64),
        test_target=np.array([s[-1] for s in seqs], dtype=np.int64),
        valid_time=np.array([t[-2] for t in times], dtype=np.int64),
        test_time=np.array([t[-1] for t in times], dtype=np.int64),
    )


def truncate_last(split: LeaveLastOutSplit, n: int) -> LeaveLastOutSplit:
    """The split of the same data with each user's last ``n`` interactions removed.

    ``truncate_last(split, n)``'s validation stage predicts each user's ``n``-th training
    item from the end, so ``[split] + [truncate_last(split, n) for n in 1..]`` give more
    validation folds without touching any test item. Users left with fewer than 3
    interactions are dropped; the catalog is unchanged.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    keep = [u for u in range(split.n_users) if len(split.train[u]) + 2 - n >= 3]
    seqs = [np.append(split.train[u], [split.valid_target[u], split.test_target[u]]) for u in keep]
    times = [
        np.append(split.train_times[u], [split.valid_time[u], split.test_time[u]]) for u in keep
    ]
    end = slice(None, -n if n else None)
    return _from_sequences(
        [split.users[u] for u in keep],
        split.items,
        split.item_index,
        [s[end] for s in seqs],
        [t[end] for t in times],
    )


def protocol_a_split(df: pd.DataFrame, k: int = 5) -> LeaveLastOutSplit:
    """Protocol A: iterative k-core followed by leave-last-out."""
    return leave_last_out(k_core(df, k))


def sampled_candidates(
    split: LeaveLastOutSplit, n_negatives: int = 19, seed: int = 0, stage: Stage = "test"
) -> np.ndarray:
    """Protocol B candidate sets: the target in column 0, then uniform unseen negatives.

    Negatives are drawn without replacement, uniformly from the catalog items the user never
    interacted with (train, validation and test items all count as seen), with one
    ``numpy.random.Generator`` seeded by ``seed`` and consumed in user order.

    Args:
        split: The leave-last-out split.
        n_negatives: Negatives per user.
        seed: Seed of the generator.
        stage: Whose target goes in column 0.

    Returns:
        Item indices, shape (n_users, 1 + n_negatives).
    """
    targets = split.targets(stage)
    rng = np.random.default_rng(seed)
    out = np.empty((split.n_users, 1 + n_negatives), dtype=np.int64)
    for u in range(split.n_users):
        seen = np.concatenate([split.train[u], [split.valid_target[u], split.test_target[u]]])
        unseen = np.setdiff1d(np.arange(split.n_items), seen, assume_unique=False)
        if len(unseen) < n_negatives:
            raise ValueError(f"user {split.users[u]!r} has only {len(unseen)} unseen items")
        out[u, 0] = targets[u]
        out[u, 1:] = rng.choice(unseen, size=n_negatives, replace=False)
    return out
