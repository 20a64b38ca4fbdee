"""Protocol A for the LLM rerank stage: per-user records (resumable), then metrics for any
blend weight, chosen on validation and read once on test."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..data import Dataset
from ..knowledge import UserProfiler
from ..llm import LLMClient
from ..llm.cache import cache_owner
from ..privacy import user_tag
from ..rerank import LLMReranker, blend_orders
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

    @field_validator("fused_rank", mode="before")
    @classmethod
    def _absent_is_inf(cls, value):
        return float("inf") if value is None else value  # files written before inf was kept as Infinity


class RecordLog:
    """Append-only JSONL of records, one line per user; a rerun skips users already done (the last line of a user wins)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, RerankRecord]:
        records: dict[str, RerankRecord] = {}
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            for number, line in enumerate(lines, start=1):
                try:
                    record = RerankRecord.model_validate_json(line)
                except ValueError as error:
                    if number == len(lines):
                        continue  # the last line cut short by an interruption: that user is redone
                    raise ValueError(f"{self.path}:{number}: unreadable record ({error}); "
                                     "delete the line or the file to redo those users") from error
                records[record.user] = record
        return records

    def append(self, record: RerankRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as handle:
            if handle.seek(0, 2):
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":  # a line cut short by an interruption: drop it
                    handle.seek(0)
                    handle.truncate(handle.read().rfind(b"\n") + 1)
            handle.write(record.model_dump_json().encode() + b"\n")


def run_rerank(world: StageWorld, users: Sequence[int], client: LLMClient, dataset: Dataset, log: RecordLog,
               depth: int = 20, k: int = 10, profile_budget: int | None = 500, history_items: int = 12,
               progress: Callable[[int], None] | None = None) -> list[RerankRecord]:
    """Rerank each user's fused top-``depth`` with the model; records are appended as they finish.

    A user already in ``log`` is not redone when the model would see the same fused list again.
    """
    done = log.load()
    reranker = LLMReranker(client, world.catalog, None, llm_weight=1.0, history_items=history_items)
    profiler = UserProfiler(client, world.catalog, profile_budget) if profile_budget else None
    out = []
    for u in users:
        user = world.split.users[u]
        history, times = world.history(u)
        start = time.perf_counter()
        full = world.retriever.retrieve(history, times, depth=100, evidence_for=depth)
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
        ratings = {i: r for i, r in dataset.interactions.ratings(user).items() if i in set(history)}
        with cache_owner(user_tag(user)):  # so `promptrec forget USER` finds these replies
            profile = profiler.profile(history, ratings) if profiler else None
            outcome = reranker.rerank(candidates, history, k, profile.profile if profile else None, None, ratings)
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

