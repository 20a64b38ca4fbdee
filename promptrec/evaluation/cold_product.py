"""Protocol D for the product: next-item recommendation with new items in the catalog, through the
product's own retriever (its ``cold`` source included), to choose and check the ``cold`` fusion weight.

Stage ``valid``: the test task's new items are removed from everything; the validation task's new
items lose their interactions (they are new to the fitted models); each user's target is their
last remaining interaction (a new or an old item), their history the earlier ones without the new
items. Stage ``test``: the test task's new items are new; the validation task's are ordinary items
again; each user's target is their last interaction. Every user with a history is scored, ranked
among all catalog items (history excluded), so the weight trades new-item targets against the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Catalog
from .cold_start import ColdItemTask
from .splits import LeaveLastOutSplit, Stage


@dataclass
class NextItemWithNew:
    """A leave-last-out split (``valid`` stage: history -> target) whose catalog has new items."""

    split: LeaveLastOutSplit
    catalog: Catalog
    new: set[str]

    def is_new_target(self) -> np.ndarray:
        """Per user, whether the target is a new item."""
        return np.array([self.split.items[t] in self.new for t in self.split.valid_target])


def next_item_with_new(split: LeaveLastOutSplit, catalog: Catalog, valid: ColdItemTask, test: ColdItemTask,
                       stage: Stage) -> NextItemWithNew:
    """The product-level task of ``stage`` (module doc) over the 5-core ``split`` and its ``catalog``."""
    removed = set() if stage == "test" else set(test.new.tolist())
    new = set((valid if stage == "valid" else test).new.tolist())
    keep_items = [i for i in range(split.n_items) if i not in removed]
    users, train, times, targets, target_times = [], [], [], [], []
    for u in range(split.n_users):
        seq = np.append(split.train[u], [split.valid_target[u], split.test_target[u]])
        stamps = np.append(split.train_times[u], [split.valid_time[u], split.test_time[u]])
        keep = np.array([i not in removed for i in seq.tolist()], dtype=bool)
        seq, stamps = seq[keep], stamps[keep]
        if len(seq) < 2:
            continue
        old = np.array([i not in new for i in seq[:-1].tolist()], dtype=bool)
        if not old.any():
            continue
        users.append(split.users[u])
        train.append(seq[:-1][old])
        times.append(stamps[:-1][old])
        targets.append(seq[-1])
        target_times.append(stamps[-1])
    target = np.array(targets, dtype=np.int64)
    stamp = np.array(target_times, dtype=np.int64)
    staged = LeaveLastOutSplit(users=users, items=split.items, item_index=split.item_index, train=train,
                               train_times=times, valid_target=target, test_target=target, valid_time=stamp,
                               test_time=stamp)
    ids = [split.items[i] for i in keep_items]
    return NextItemWithNew(staged, Catalog(catalog[i] for i in ids), {split.items[i] for i in new})


__all__ = ["NextItemWithNew", "next_item_with_new"]
