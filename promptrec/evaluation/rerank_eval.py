"""Protocol A for the LLM rerank stage: per-user records (resumable), then metrics for any
blend weight, chosen on validation and read once on test."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from ..records import RecordLog
from ..rerank import blend_orders
from ..llm.cache import cache_owner
from ..privacy import user_tag
from .metrics import evaluate_rankings
from .product import StageWorld, rank_of


class RerankRecord(BaseModel):
    """What the rerank stage did for one user at one stage."""

    model_config = ConfigDict(ser_json_inf_nan="constants")  # fused_rank may be inf: keep it in JSON

    user: str
    stage: str
    target: str
    fused: list[str] = Field(description="The fused top-D the model saw, in fused order.")
    fused_rank: float = Field(description="The target's rank in the fused list (inf when absent).")
    llm_order: list[str] = Field(default_factory=list)
    valid: bool
    error: str | None = None
    rejected: int = 0
    llm_explained: dict[str, list[str]] = Field(default_factory=dict, description="item -> cited history ids")
    evidence: dict[str, str | None] = Field(default_factory=dict)
    profile_source: str | None = None
    seconds: float
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def rerank_log(path) -> RecordLog[RerankRecord]:
    """The resumable per-user record file of one rerank run."""
    return RecordLog(path, RerankRecord, key=lambda record: record.user)


def run_rerank(world: StageWorld, users: Sequence[int], log: RecordLog[RerankRecord], k: int = 10,
               progress: Callable[[int], None] | None = None) -> list[RerankRecord]:
    """Rerank each user's fused candidates with the world's engine, exactly as ``recommend()`` does
    (same candidates, profile and rerank calls); records are appended as they finish.

    The engine's rerank settings give the depth the model sees; the fused rank of the target is read
    in a deeper list (100) so a target the model never saw still counts where retrieval put it.
    A user already in ``log`` is not redone when the model would see the same fused list again.
    """
    engine = world.engine
    client = engine.client
    if engine.reranker is None:
        raise ConfigError("the rerank stage needs a language model (--llm MODEL) and rerank.enabled "
                          "(PROMPTREC_RERANK__ENABLED=true)")
    depth = engine.rerank_depth(k)
    done = log.load()
    out = []
    for u in users:
        user = world.split.users[u]
        history = world.history(u)
        start = time.perf_counter()
        full = engine.candidates(history, k, depth=max(100, depth))
        candidates = full[:depth]
        target = world.target(u)
        fused, fused_rank = [c.item_id for c in candidates], rank_of(target, [c.item_id for c in full])
        kept = done.get(user)
        if kept and kept.stage == world.stage and kept.fused == fused and kept.fused_rank == fused_rank:
            out.append(kept)  # the model saw exactly this list: nothing to redo
            if progress:
                progress(1)
            continue
        before = client.stats.model_copy(deep=True)
        with cache_owner(user_tag(user)):  # so `promptrec forget USER` finds these replies
            profile = engine.profile(history)
            outcome = engine.rerank(candidates, history, k, None, profile)
        seconds = time.perf_counter() - start
        record = RerankRecord(
            user=user, stage=world.stage, target=target, fused=fused, fused_rank=fused_rank,
            llm_order=outcome.llm_order,
            valid=outcome.valid, error=outcome.error, rejected=outcome.rejected,
            llm_explained={i: e.cited for i, e in outcome.explanations.items()},
            evidence={c.item_id: c.evidence for c in candidates},
            profile_source=profile.source if profile else None, seconds=seconds,
            calls=client.stats.calls - before.calls,
            prompt_tokens=client.stats.prompt_tokens - before.prompt_tokens,
            completion_tokens=client.stats.completion_tokens - before.completion_tokens,
        )
        log.append(record)
        out.append(record)
        if progress:
            progress(1)
    return out


def final_order(record: RerankRecord, weight: float) -> list[str]:
    return blend_orders(record.fused, record.llm_order, weight) if record.valid else list(record.fused)


def final_rank(record: RerankRecord, weight: float) -> float:
    rank = rank_of(record.target, final_order(record, weight))
    return rank if np.isfinite(rank) else record.fused_rank


def rerank_metrics(records: Sequence[RerankRecord], weight: float, k: int = 10,
                   item_index: dict[str, int] | None = None, n_items: int | None = None,
                   popularity: np.ndarray | None = None) -> dict[str, float]:
    """Ranking metrics with blend ``weight``, plus grounding, validity and cost figures
    (coverage and popularity rank of the top-k lists when ``item_index`` is given)."""
    ranks = np.array([final_rank(r, weight) for r in records])
    lists = None
    if item_index is not None:
        lists = [np.array([item_index[i] for i in final_order(r, weight)[:k]], dtype=np.int64) for r in records]
    out = evaluate_rankings(ranks, rec_lists=lists, n_items=n_items, popularity_counts=popularity)
    grounded = llm_explained = shown = 0
    for record in records:
        for item in final_order(record, weight)[:k]:
            shown += 1
            if record.llm_explained.get(item):
                grounded += 1
                llm_explained += 1
            elif record.evidence.get(item):
                grounded += 1
    seconds = sorted(r.seconds for r in records)
    out.update({
        "grounding_rate": grounded / shown if shown else float("nan"),
        "llm_explained_rate": llm_explained / shown if shown else float("nan"),
        "fallback_rate": float(np.mean([not r.valid for r in records])),
        "rerank_invalid_rate": float(np.mean([not r.valid and "invalid" in (r.error or "") or
                                              r.error == "no valid pick in the reply" for r in records])),
        "rejected_picks_per_user": float(np.mean([r.rejected for r in records])),
        "profile_invalid_rate": float(np.mean([r.profile_source == "fallback" for r in records])),
        "llm_calls": int(sum(r.calls for r in records)),
        "prompt_tokens": int(sum(r.prompt_tokens for r in records)),
        "completion_tokens": int(sum(r.completion_tokens for r in records)),
        "latency_p50_s": statistics.median(seconds),
        "latency_p95_s": float(np.percentile(seconds, 95)),
    })
    return out


def select_llm_weight(records: Sequence[RerankRecord], grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
                      k: int = 10) -> tuple[float, list[dict]]:
    """The blend weight with the best N@k on these (validation) records; ties go to the smaller weight."""
    rows = []
    for w in grid:
        metrics = rerank_metrics(records, float(w), k)
        rows.append({"llm_weight": float(w), f"N@{k}": metrics[f"N@{k}"], f"R@{k}": metrics[f"R@{k}"]})
    best = max(rows, key=lambda row: (row[f"N@{k}"], -row["llm_weight"]))
    return best["llm_weight"], rows

