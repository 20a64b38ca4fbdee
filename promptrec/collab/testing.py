"""Contract checks every :class:`~promptrec.collab.base.ItemScorer` must pass, plus a tiny
synthetic data set to run them on. Used by the test suite; reusable for new scorers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import ItemScorer

__all__ = ["check_scorer_contract", "synthetic_interactions"]


def synthetic_interactions(
    n_users: int = 40, n_items: int = 30, length: int = 12, seed: int = 0
) -> pd.DataFrame:
    """Interaction frame where each user walks the item ring ``i -> i+1 (-> i+2)`` from a
    random start, one step per hour from a random day, so order carries signal."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        item = int(rng.integers(n_items))
        t0 = int(1_000_000_000 + rng.integers(0, 400) * 86_400)
        seen: set[int] = set()
        for step in range(length):
            while item in seen:
                item = (item + 1) % n_items
            seen.add(item)
            rows.append((str(u), str(item), t0 + 3_600 * step, float(rng.integers(1, 6))))
            item = (item + 1 + int(rng.random() < 0.2)) % n_items
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


def check_scorer_contract(scorer: ItemScorer, split) -> None:
    """Assert the interface contract on a fitted-on-``split`` scorer (raises AssertionError).

    Checks: fit returns self; batch scores have shape (n, n_items) and are finite and
    deterministic; ``score_one`` equals the batch row; an empty history and missing times
    are accepted; ``contributions`` is None or one finite value per history position.
    """
    histories, times = split.sequences("test")
    assert scorer.fit(split.fit_matrix("test"), histories, times) is scorer
    batch = scorer.score(histories[:5], times[:5])
    assert batch.shape == (5, split.n_items), batch.shape
    assert np.isfinite(batch).all()
    np.testing.assert_array_equal(batch, scorer.score(histories[:5], times[:5]))
    np.testing.assert_allclose(scorer.score_one(histories[2], times[2]), batch[2])
    assert scorer.score_one(np.array([], dtype=np.int64)).shape == (split.n_items,)
    assert scorer.score([histories[0]]).shape == (1, split.n_items)
    contrib = scorer.contributions(histories[0], int(split.test_target[0]), times[0])
    if contrib is not None:
        assert contrib.shape == (len(histories[0]),)
        assert np.isfinite(contrib).all()
