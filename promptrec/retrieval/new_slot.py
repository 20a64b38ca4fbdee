"""A reserved place for a new item: when none of a list's first ``slot`` items is new (an item the
collaborative scorers cannot score: no or too few interactions), the best new item by its ``cold``
score (its text mapped into the collaborative space, :mod:`promptrec.knowledge.new_items`) is shown
at position ``slot``. A fused weighted sum rarely lets a new item win on its own: its mapped score is
on another scale than warm items' collaborative evidence, so the ``cold`` fusion weight chosen on
validation is 0; a reserved place is how the product shows new items at a measured cost
(``eval/protocol_d_product.py`` chooses ``new_items.slot`` on validation).

The retriever and the evaluation call the same :func:`place_new` on positions, so the evaluation
measures the shipped rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def place_new(order: Sequence[int], is_new: Sequence[bool], cold: Sequence[float], slot: int | None) -> list[int]:
    """``order`` (pool positions, best first) with the best new item moved to position ``slot`` (1-based)
    when none of the first ``slot`` is new.

    Args:
        order: A ranking of pool positions (the whole pool or its top).
        is_new: Per pool position, whether that item is new.
        cold: Per pool position, the new item's ``cold`` score (non-finite: not scored, never placed).
        slot: The reserved position; ``None`` or 0: no reserved place.

    A new item that is not in ``order`` (e.g. outside the top taken) is inserted; ``order`` keeps its
    length only when the moved item was in it, so callers cut to their depth afterwards.
    """
    order = list(order)
    if not slot or not order:
        return order
    if any(is_new[n] for n in order[:slot]):
        return order
    candidates = [n for n in range(len(is_new)) if is_new[n] and np.isfinite(cold[n])]
    if not candidates:
        return order
    best = max(candidates, key=lambda n: (float(cold[n]), -n))
    if best in order:
        order.remove(best)
    position = min(slot, len(order) + 1) - 1
    order.insert(position, best)
    return order


__all__ = ["place_new"]
