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
from ..data import Catalog
from ..types import Recommendation, RecommendationList
from .beyond import GroupContext, bootstrap_indices, describe, percentile_interval
from .faithfulness import ClaimReader, explanation_figures, sample_reasons
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
    reasons: dict[str, str] = Field(default_factory=dict, description="item -> the model's reason, as shown")
    history_length: int | None = None
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
            reasons={i: e.text for i, e in outcome.explanations.items()},
            history_length=len(history.items),
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


def shown_list(record: RerankRecord, weight: float, k: int = 10, catalog: Catalog | None = None) -> RecommendationList:
    """The top ``k`` a user was shown with blend ``weight``, explained as the product explains them:
    the model's reason where it gave a valid one, else the retrieval evidence (cited, no text)."""
    items = []
    for rank, item in enumerate(final_order(record, weight)[:k], start=1):
        title = catalog[item].title if catalog is not None and item in catalog else item
        if item in record.llm_explained and item in record.reasons:
            items.append(Recommendation(item_id=item, title=title, rank=rank, score=0.0, explanation=record.reasons[item],
                                        cited_history=record.llm_explained[item], explained_by="llm"))
        else:
            evidence = record.evidence.get(item)
            items.append(Recommendation(item_id=item, title=title, rank=rank, score=0.0, explanation="",
                                        cited_history=[evidence] if evidence else [], explained_by="evidence"))
    ordered_by = "llm_rerank" if record.valid and weight > 0 else "fusion"
    return RecommendationList(user_id=record.user, items=items, ordered_by=ordered_by, fallback=not record.valid)


def rerank_row(records: Sequence[RerankRecord], weight: float, users: Sequence[int], item_index: dict[str, int],
               context: GroupContext, catalog: Catalog, reader: ClaimReader | None = None, k: int = 10,
               sample: int = 10) -> dict:
    """One LLM row: the metrics of :func:`rerank_metrics`, each with its 95% bootstrap interval over
    users, the row's groups (:func:`~.beyond.describe`), the explanation metrics
    (:func:`~.faithfulness.explanation_metrics`) and a seeded sample of the model's reasons.

    ``users`` are the records' split user indices, in the records' order."""
    flat = rerank_metrics(records, weight, k, item_index, context.n_items, context.popularity)
    ranks = np.array([final_rank(r, weight) for r in records])
    targets = [item_index[r.target] for r in records]
    lists = [np.array([item_index[i] for i in final_order(r, weight)[:k]], dtype=np.int64) for r in records]
    described = describe(ranks, targets, lists, context, users)
    metrics = {**flat, **described["metrics"]}
    intervals = dict(described["intervals"])
    idx = bootstrap_indices(len(records), context.seed)
    grounded, explained, shown = [], [], []
    for record in records:
        order = final_order(record, weight)[:k]
        shown.append(len(order))
        explained.append(sum(bool(record.llm_explained.get(i)) for i in order))
        grounded.append(sum(bool(record.llm_explained.get(i)) or bool(record.evidence.get(i)) for i in order))
    per_user = {
        "fallback_rate": [not r.valid for r in records],
        "rerank_invalid_rate": [not r.valid and "invalid" in (r.error or "") or r.error == "no valid pick in the reply"
                                for r in records],
        "rejected_picks_per_user": [r.rejected for r in records],
        "profile_invalid_rate": [r.profile_source == "fallback" for r in records],
    }
    for name, values in per_user.items():
        intervals[name] = percentile_interval(np.asarray(values, dtype=np.float64)[idx].mean(axis=1))
    shown_arr = np.asarray(shown, dtype=np.float64)
    for name, values in (("grounding_rate", grounded), ("llm_explained_rate", explained)):
        totals = shown_arr[idx].sum(axis=1)
        intervals[name] = percentile_interval(np.where(totals > 0, np.asarray(values, float)[idx].sum(axis=1) /
                                                       np.maximum(totals, 1), np.nan))
    seconds = np.array([r.seconds for r in records])
    intervals["latency_p50_s"] = percentile_interval(np.median(seconds[idx], axis=1))
    intervals["latency_p95_s"] = percentile_interval(np.percentile(seconds[idx], 95, axis=1))
    answers = [shown_list(r, weight, k, catalog) for r in records]
    reader = reader or ClaimReader(catalog)
    explained_metrics, explained_intervals = explanation_figures(answers, catalog, [r.history_length for r in records],
                                                                 reader, idx)
    metrics.update(explained_metrics)
    intervals.update(explained_intervals)
    return {"metrics": metrics, "intervals": intervals, "groups": described["groups"],
            "reason_sample": sample_reasons(answers, catalog, n=sample, seed=context.seed, reader=reader)}


def select_llm_weight(records: Sequence[RerankRecord], grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
                      k: int = 10) -> tuple[float, list[dict]]:
    """The blend weight with the best N@k on these (validation) records; ties go to the smaller weight."""
    rows = []
    for w in grid:
        metrics = rerank_metrics(records, float(w), k)
        rows.append({"llm_weight": float(w), f"N@{k}": metrics[f"N@{k}"], f"R@{k}": metrics[f"R@{k}"]})
    best = max(rows, key=lambda row: (row[f"N@{k}"], -row["llm_weight"]))
    return best["llm_weight"], rows

