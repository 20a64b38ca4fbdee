"""eval/protocol_d_product.py: the test rows' top-10 lists are the lists their target ranks are read from."""

import numpy as np

from promptrec.retrieval import COLD
from promptrec.testing import load_eval_script


def pools(rng, n_users=30, n_items=40):
    out, targets = [], []
    items = [f"i{n}" for n in range(n_items)]
    for _ in range(n_users):
        chosen = list(rng.choice(items, size=25, replace=False))
        sources = {"classic": rng.random(25), "embedding": rng.random(25),
                   COLD: np.where(np.array([int(i[1:]) >= 30 for i in chosen]), rng.random(25), np.nan)}
        out.append((chosen, sources))
        targets.append(chosen[int(rng.integers(25))])
    return out, targets, {f"i{n}" for n in range(30, n_items)}


def test_top_lists_hold_each_target_at_the_rank_ranks_with_gives():
    script = load_eval_script("protocol_d_product")
    rng = np.random.default_rng(0)
    collected, targets, new = pools(rng)
    for weights, slot in (({"classic": 1.0, "embedding": 0.1, COLD: 0.0}, 0), ({"classic": 1.0, "embedding": 0.1, COLD: 0.0}, 3),
                          ({"classic": 1.0, "embedding": 0.1, COLD: 0.5}, 0)):
        ranks = script.ranks_with(collected, targets, weights, 10, new, slot)
        lists = script.top_with(collected, weights, 10, new, slot, k=10)
        for rank, top, target in zip(ranks, lists, targets):
            assert len(top) <= 10 and len(set(top)) == len(top)
            assert (target in top) == (rank < 10) and (rank >= 10 or top.index(target) == rank)
        if slot:  # a reserved place: every list shows a new item within its first `slot` places when its pool has one
            assert all(any(i in new for i in top[:slot]) for top in lists)
