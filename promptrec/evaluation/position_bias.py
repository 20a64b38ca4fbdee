"""Protocol B (target + 19 sampled negatives) for the LLM rerank, with the target placed at fixed
positions to measure position bias, before and after a mitigation (permutation averaging)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..collab import classic_blend
from ..data import Catalog
from ..engine import build_reranker
from ..knowledge import FeatureStore
from ..llm import LLMClient
from ..llm.cache import cache_owner
from ..privacy import user_tag
from ..records import RecordLog
from ..settings import Settings
from ..types import Candidate
from .classic import fit_and_score
from .metrics import evaluate_rankings
from .splits import LeaveLastOutSplit, sampled_candidates

POSITIONS = (0, 5, 10, 15, 19)


class BiasRecord(BaseModel):
    """The target's rank for one user, one target position and one mitigation."""

    user: str
    position: int
    permutations: int
    rank: float
    valid: bool


def bias_log(path: Path) -> RecordLog[BiasRecord]:
    """The resumable record file of one position-bias run (one line per user, position, mitigation)."""
    return RecordLog(path, BiasRecord, key=lambda r: (r.user, r.position, r.permutations))


def run_position_bias(split: LeaveLastOutSplit, settings: Settings, catalog: Catalog, client: LLMClient,
                      features: FeatureStore | None, users: Sequence[int], log: RecordLog[BiasRecord],
                      positions: Sequence[int] = POSITIONS, mitigations: Sequence[int] = (1, 2), k: int = 10,
                      progress: Callable[[int], None] | None = None) -> list[BiasRecord]:
    """Rank each user's 20 candidates with the product's reranker, the target at each of ``positions``.

    The reranker is the one :func:`~promptrec.engine.build_reranker` makes from ``settings.rerank``,
    with the model's order alone (``llm_weight`` 1) and ``mitigations`` as the numbers of candidate
    orders averaged (1 = none, 2 = the order and its reverse). The negatives keep one seeded order;
    only the target moves.
    """
    seed = settings.seed
    sets = sampled_candidates(split, 19, seed, "test")
    done = log.load()
    rng = np.random.default_rng(seed)
    out = []
    for u in users:
        user = split.users[u]
        target = split.items[sets[u, 0]]
        negatives = [split.items[i] for i in rng.permutation(sets[u, 1:])]
        history = [split.items[i] for i in split.history(u, "test")]
        for m in mitigations:
            rerank = settings.rerank.model_copy(update={"llm_weight": 1.0, "permutations": m, "enabled": True})
            reranker = build_reranker(rerank, client, catalog, features, seed)
            for p in positions:
                key = (user, p, m)
                if key not in done:
                    order = negatives[:p] + [target] + negatives[p:]
                    candidates = [Candidate(item_id=i, title=catalog[i].title) for i in order]
                    with cache_owner(user_tag(user)):  # so `promptrec forget USER` finds these replies
                        outcome = reranker.rerank(candidates, history, k)
                    rank = float(outcome.order.index(target)) if outcome.valid else float(p)
                    done[key] = BiasRecord(user=user, position=p, permutations=m, rank=rank, valid=outcome.valid)
                    log.append(done[key])
                out.append(done[key])
                if progress:
                    progress(1)
    return out


def summarize(records: Sequence[BiasRecord]) -> dict:
    """N@10 per target position and mitigation, the spread across positions, and the mean metrics."""
    out: dict = {}
    for m in sorted({r.permutations for r in records}):
        chosen = [r for r in records if r.permutations == m]
        by_position = {
            p: evaluate_rankings(np.array([r.rank for r in chosen if r.position == p]), ks=(1, 5, 10))["N@10"]
            for p in sorted({r.position for r in chosen})
        }
        overall = evaluate_rankings(np.array([r.rank for r in chosen]), ks=(1, 5, 10))
        out[f"permutations={m}"] = {
            "N@10_by_target_position": by_position,
            "N@10_spread": max(by_position.values()) - min(by_position.values()),
            "mean": {key: overall[key] for key in ("N@1", "N@5", "N@10", "R@1", "R@5", "R@10")},
            "invalid_rate": float(np.mean([not r.valid for r in chosen])),
            "users": len({r.user for r in chosen}),
        }
    return out


def protocol_b_baselines(split: LeaveLastOutSplit, users: Sequence[int], seed: int = 0) -> dict:
    """Popularity, the classic blend and the random-order expectation on the same candidate sets."""
    sets = sampled_candidates(split, 19, seed, "test")[users]
    popularity = np.asarray(split.fit_matrix("test").sum(axis=0)).ravel()
    blend = fit_and_score(classic_blend(), split, "test")[users]
    out = {}
    for name, scores in (("popularity", popularity[sets]), ("classic blend", np.take_along_axis(blend, sets, 1))):
        order = np.lexsort((np.arange(sets.shape[1])[None, :].repeat(len(users), 0), -scores), axis=1)
        ranks = np.argmax(order == 0, axis=1).astype(float)
        metrics = evaluate_rankings(ranks, ks=(1, 5, 10))
        out[name] = {key: metrics[key] for key in ("N@1", "N@5", "N@10", "R@1", "R@5", "R@10")}
    out["random (expected)"] = {"N@10": float(np.mean([1 / np.log2(r + 2) for r in range(10)]) * 10 / 20)}
    return out
