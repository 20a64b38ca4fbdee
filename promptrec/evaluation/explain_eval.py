"""Protocol A for the product's explained answer: the fused top k that ``recommend()`` shows and the
model's reason per shown item (:class:`~promptrec.explain.Explainer`), as the product streams them.

Per user, :func:`run_explained` runs the world's own :meth:`~promptrec.engine.Engine.recommend_stream`
and keeps the shown list once every shown item has its reason, before the stream's ``final`` event
(which adds the user's profile: no part of the explanations, and a model call). It records every
draft the model wrote, shown or refused by the quality gate (:attr:`Explainer.on_draft`), so the
gate's refusals and the drafts' faithfulness before the gate are measured too.
:func:`explained_row` turns the records into one row of metrics with intervals over users.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data import Catalog
from ..llm.cache import cache_owner
from ..privacy import user_tag
from ..records import RecordLog
from ..types import ExplanationTotals, History, RecommendationList
from .beyond import GroupContext, bootstrap_indices, describe, percentile_interval
from .faithfulness import ClaimReader, explanation_figures, sample_reasons, seeded_choice
from .metrics import evaluate_rankings
from .product import StageWorld, rank_of

REFUSED_SAMPLE = 5


class Draft(BaseModel):
    """One reason the model wrote for a shown item, before the quality gate."""

    item: str
    text: str
    problem: str | None = Field(None, description="Why the gate refused it (None: it was shown).")


class ExplainRecord(BaseModel):
    """What the product showed one user at one stage, and the model's drafts behind it."""

    model_config = ConfigDict(ser_json_inf_nan="constants")

    user: str
    stage: str
    target: str
    shown: RecommendationList = Field(description="The shown list, every item with its final explanation.")
    history_length: int
    drafts: list[Draft] = Field(default_factory=list)
    seconds: float = Field(description="Wall seconds from the request to the last shown reason.")
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict[str, float] = Field(default_factory=dict)

    @property
    def shown_ids(self) -> list[str]:
        return [r.item_id for r in self.shown.items]


def explain_log(path) -> RecordLog[ExplainRecord]:
    """The resumable per-user record file of one explained-answer run."""
    return RecordLog(path, ExplainRecord, key=lambda record: record.user)


def _with_totals(result: RecommendationList, drafts: Sequence[Draft]) -> RecommendationList:
    """The list with its explanation totals as shown once every reason is in."""
    items = result.items
    refused = sum(d.problem is not None for d in drafts)
    result.explanations = ExplanationTotals(
        llm=sum(r.explained_by == "llm" for r in items), evidence=sum(r.explained_by == "evidence" for r in items),
        rejected=refused, distinct_cited=len({c for r in items for c in r.cited_history}))
    result.rejected_reasons = refused
    return result


def explained_answer(world: StageWorld, history: History, k: int, user: str,
                     kept: ExplainRecord | None = None) -> tuple[RecommendationList, list[Draft], dict] | None:
    """The product's answer for ``history`` as shown once every item has its reason, the model's
    drafts, and timings; None when ``kept`` already holds this stage's answer with the same items.

    Consumes :meth:`~promptrec.engine.Engine.recommend_stream` up to the last shown item's ``reason``
    event (right after the ``list`` event when no model writes reasons) and closes it there, so the
    profile the stream computes before ``final`` is never asked for.
    """
    engine = world.engine
    explainer = engine.explainer
    writing = explainer is not None and explainer.client is not None
    drafts: list[Draft] = []
    before = explainer.on_draft if explainer is not None else None
    if explainer is not None:
        explainer.on_draft = lambda item, text, problem: drafts.append(Draft(item=item, text=text, problem=problem))
    start = time.perf_counter()
    stream = engine.recommend_stream(history, k, user_id=user, scope=lambda: cache_owner(user_tag(user)))
    shown: RecommendationList | None = None
    reasons = 0
    try:
        for event in stream:
            if event.kind == "list":
                if shown is None and kept is not None and kept.stage == world.stage \
                        and kept.shown_ids == [r.item_id for r in event.result.items]:
                    return None  # the model would explain exactly this list again: nothing to redo
                shown, reasons = event.result, 0
            elif event.kind == "reason" and shown is not None:
                shown.items = [event.item if r.item_id == event.item.item_id else r for r in shown.items]
                reasons += 1
            if event.kind == "final" or (shown is not None and (not writing or reasons == len(shown.items))):
                break
    finally:
        stream.close()  # stops before the profile
        if explainer is not None:
            explainer.on_draft = before
    seconds = time.perf_counter() - start
    if shown is None:
        raise RuntimeError("the recommendation stream ended without a list")
    timings = {**shown.timings, "explained_s": round(seconds, 4)}
    return _with_totals(shown, drafts), drafts, timings


def run_explained(world: StageWorld, users: Sequence[int], log: RecordLog[ExplainRecord], k: int = 10,
                  progress: Callable[[int], None] | None = None) -> list[ExplainRecord]:
    """The product's explained answer (``recommend()`` without a request) for each user, recorded as
    it finishes. A user already in ``log`` for this stage with the same shown items is not redone."""
    client = world.engine.client
    done = log.load()
    out = []
    for u in users:
        user = world.split.users[u]
        history = world.history(u)
        kept = done.get(user)
        before = client.stats.model_copy(deep=True) if client is not None else None
        answer = explained_answer(world, history, k, user, kept)
        if answer is None:
            out.append(kept)
        else:
            shown, drafts, timings = answer
            stats = client.stats if client is not None else None
            record = ExplainRecord(
                user=user, stage=world.stage, target=world.target(u), shown=shown, history_length=len(history.items),
                drafts=drafts, seconds=timings["explained_s"], timings=timings,
                calls=stats.calls - before.calls if stats else 0,
                prompt_tokens=stats.prompt_tokens - before.prompt_tokens if stats else 0,
                completion_tokens=stats.completion_tokens - before.completion_tokens if stats else 0,
            )
            log.append(record)
            out.append(record)
        if progress:
            progress(1)
    return out


def _draft_cited(record: ExplainRecord) -> dict[str, list[str]]:
    """The history item each draft cited: the shown item's citation (a refused draft's evidence
    explanation cites the same item)."""
    return {r.item_id: list(r.cited_history) for r in record.shown.items}


def draft_counts(record: ExplainRecord, reader: ClaimReader) -> dict[str, int]:
    """One user's draft counts: drafts, refused, with a claim, faithful (the verdict of
    :meth:`ClaimReader.verdict` on every draft, as the faithfulness metric reads shown reasons)."""
    cited = _draft_cited(record)
    counts = {"drafts": len(record.drafts), "refused": 0, "with_claims": 0, "faithful": 0}
    for draft in record.drafts:
        counts["refused"] += draft.problem is not None
        verdict = reader.verdict(draft.item, draft.text, cited.get(draft.item, []))
        if verdict["claims"]:
            counts["with_claims"] += 1
            counts["faithful"] += bool(verdict["faithful"])
    return counts


def refused_sample(records: Sequence[ExplainRecord], catalog: Catalog, n: int = REFUSED_SAMPLE,
                   seed: int = 0) -> list[dict]:
    """A seeded sample of ``n`` drafts the gate refused, with the problem it found."""
    pool = [(record, draft) for record in records for draft in record.drafts if draft.problem is not None]
    out = []
    for record, draft in seeded_choice(pool, n, seed):
        cited = _draft_cited(record).get(draft.item, [])
        out.append({"user": record.user, "item": draft.item,
                    "title": catalog[draft.item].title if draft.item in catalog else draft.item,
                    "cited": [catalog[c].title if c in catalog else c for c in cited],
                    "reason": draft.text, "problem": draft.problem})
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    return float(num.sum() / den.sum()) if den.sum() else float("nan")


def _ratio_interval(num: np.ndarray, den: np.ndarray, idx: np.ndarray) -> list[float] | None:
    totals = den[idx].sum(axis=1)
    return percentile_interval(np.where(totals > 0, num[idx].sum(axis=1) / np.maximum(totals, 1), np.nan))


def gate_figures(records: Sequence[ExplainRecord], reader: ClaimReader, idx: np.ndarray, metrics: dict,
                 intervals: dict) -> None:
    """Adds the drafts' figures (per list, refused, with a claim, faithful before the gate) and the
    explain seconds per user (mean, p50, p95) to ``metrics``, their intervals (resamples ``idx``) to
    ``intervals``."""
    if not records:
        return
    counts = [draft_counts(r, reader) for r in records]
    column = {key: np.array([c[key] for c in counts], dtype=np.float64) for key in counts[0]}
    metrics["drafts"] = int(column["drafts"].sum())
    metrics["drafts_per_list"] = float(column["drafts"].mean())
    intervals["drafts_per_list"] = percentile_interval(column["drafts"][idx].mean(axis=1))
    for name, num, den in (("draft_refused_rate", "refused", "drafts"),
                           ("draft_claim_rate", "with_claims", "drafts"),
                           ("draft_faithfulness", "faithful", "with_claims")):
        metrics[name] = _ratio(column[num], column[den])
        intervals[name] = _ratio_interval(column[num], column[den], idx)
    seconds = np.array([r.seconds for r in records])
    for name, statistic in (("explain_latency_mean_s", lambda s: np.mean(s, axis=-1)),
                            ("explain_latency_p50_s", lambda s: np.median(s, axis=-1)),
                            ("explain_latency_p95_s", lambda s: np.percentile(s, 95, axis=-1))):
        metrics[name] = float(statistic(seconds))
        intervals[name] = percentile_interval(statistic(seconds[idx]))


def explained_row(records: Sequence[ExplainRecord], users: Sequence[int], item_index: dict[str, int],
                  context: GroupContext, catalog: Catalog, reader: ClaimReader | None = None, k: int = 10,
                  sample: int = 10) -> dict:
    """One row for the product's explained answer: ranking metrics of the shown lists (the target's
    rank in the shown list, inf when absent) with the row's groups (:func:`~.beyond.describe`), the
    explanation metrics of the shown reasons (:func:`~.faithfulness.explanation_metrics`), the gate's
    figures (drafts per list, ``draft_refused_rate``, ``draft_claim_rate``, ``draft_faithfulness``
    before the gate), explain seconds per user (mean, p50, p95), each with its 95% bootstrap interval
    over users; a seeded sample of shown model reasons and one of refused drafts.

    ``users`` are the records' split user indices, in the records' order."""
    reader = reader or ClaimReader(catalog)
    shown = [r.shown_ids[:k] for r in records]
    ranks = np.array([rank_of(r.target, ids) for r, ids in zip(records, shown)])
    targets = [item_index[r.target] for r in records]
    lists = [np.array([item_index[i] for i in ids], dtype=np.int64) for ids in shown]
    flat = evaluate_rankings(ranks, rec_lists=lists, n_items=context.n_items, popularity_counts=context.popularity)
    described = describe(ranks, targets, lists, context, users)
    metrics = {**flat, **described["metrics"]}
    intervals = dict(described["intervals"])
    idx = bootstrap_indices(len(records), context.seed)

    items = [r.shown.items[:k] for r in records]
    n_shown = np.array([len(i) for i in items], dtype=np.float64)
    for name, values in (("grounding_rate", [sum(bool(r.cited_history) for r in i) for i in items]),
                         ("llm_explained_rate", [sum(r.explained_by == "llm" for r in i) for i in items])):
        values = np.asarray(values, dtype=np.float64)
        metrics[name] = _ratio(values, n_shown)
        intervals[name] = _ratio_interval(values, n_shown, idx)
    metrics.update({"llm_calls": int(sum(r.calls for r in records)),
                    "prompt_tokens": int(sum(r.prompt_tokens for r in records)),
                    "completion_tokens": int(sum(r.completion_tokens for r in records))})

    answers = [r.shown.model_copy(update={"items": r.shown.items[:k]}) for r in records]
    explained_metrics, explained_intervals = explanation_figures(answers, catalog, [r.history_length for r in records],
                                                                 reader, idx)
    metrics.update(explained_metrics)
    intervals.update(explained_intervals)

    gate_figures(records, reader, idx, metrics, intervals)
    return {"metrics": metrics, "intervals": intervals, "groups": described["groups"],
            "reason_sample": sample_reasons(answers, catalog, n=sample, seed=context.seed, reader=reader),
            "refused_sample": refused_sample(records, catalog, seed=context.seed)}


__all__ = ["Draft", "ExplainRecord", "draft_counts", "explain_log", "explained_answer", "explained_row",
           "gate_figures", "refused_sample", "run_explained"]
