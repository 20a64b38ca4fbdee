"""Whole-catalog knowledge jobs on one machine: item features and user profiles for many items/users,
with the model kept busy on several requests at once (parallel slots, or concurrent API requests).

Every request still goes through :class:`~promptrec.llm.LLMClient` (reply cache, schema validation),
so a rerun asks the model nothing it has answered before. Records are written by the calling thread
as requests finish, each flushed to disk at once: an interruption loses only the requests in flight.
Features that validate but are degenerate (:mod:`promptrec.knowledge.degenerate`) are stored as
failed records with the reason (``error = "degenerate: <reason>"``), never as features.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from filelock import FileLock
from pydantic import BaseModel, Field

from ..data import Catalog, Item
from ..llm import LLMClient
from ..llm.parallel import bounded_map, concurrency
from ..prompts import as_data
from ..state import acquire
from ..types import History, ProfileResult
from .degenerate import DEGENERATE, FeatureCheck, prompt_instructions
from .items import TEMPLATES, FeatureStore, ItemFeatureExtractor
from .users import UserProfiler



class BatchReport(BaseModel):
    """What one run of a knowledge job did, and how fast."""

    kind: str
    model_id: str
    workers: int
    requested: int = 0
    already_done: int = Field(0, description="Units that already had a good record (not asked again).")
    retried: int = Field(0, description="Units whose earlier record had failed, asked again.")
    done: int = Field(0, description="Units that got a good record in this run.")
    failed: int = Field(0, description="Units whose model call failed or whose reply was invalid.")
    rejected: dict[str, int] = Field(default_factory=dict, description="Degenerate replies, by reason.")
    model_calls: int = Field(0, description="Requests that reached the model (cache misses).")
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    interrupted: bool = Field(False, description="The run stopped early (interrupted or failed); its records are kept.")

    @property
    def processed(self) -> int:
        return self.done + self.failed + sum(self.rejected.values())

    @property
    def per_second(self) -> float:
        """Units processed per wall-clock second in this run (units already done excluded)."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        unit = "items" if self.kind == "features" else "users"
        rejected = sum(self.rejected.values())
        text = (f"{self.kind} ({self.model_id}, {self.workers} at once): {self.done} done, {self.failed} failed, "
                f"{rejected} rejected as degenerate, {self.already_done} already done; {self.model_calls} model calls, "
                f"{self.cache_hits} cached; {self.processed} {unit} in {self.seconds:.1f} s = {self.per_second:.3f} {unit}/s")
        if self.interrupted:
            text += " [interrupted]"
        if self.rejected:
            text += " (rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) + ")"
        return text


def _stats_before(client: LLMClient) -> tuple[int, int, int, int]:
    s = client.stats
    return s.calls, s.cache_hits, s.prompt_tokens, s.completion_tokens


def _finish(report: BatchReport, client: LLMClient, before: tuple[int, int, int, int], start: float) -> BatchReport:
    s = client.stats
    report.model_calls = s.calls - before[0]
    report.cache_hits = s.cache_hits - before[1]
    report.prompt_tokens = s.prompt_tokens - before[2]
    report.completion_tokens = s.completion_tokens - before[3]
    report.seconds = round(time.perf_counter() - start, 3)
    return report


@contextmanager
def _run(report: BatchReport, client: LLMClient, store, on_finish: Callable[[BatchReport], None] | None):
    """One batch run: holds the store's write lock, yields the counter of rejected replies by reason,
    and fills the report's totals when the run ends (``interrupted`` when it raised), then calls ``on_finish``."""
    lock = acquire(FileLock(str(store.path) + ".lock"), 1, f"writing {store.path}")
    before, start = _stats_before(client), time.perf_counter()
    rejected: Counter = Counter()
    try:
        yield rejected
    except BaseException:
        report.interrupted = True
        raise
    finally:
        report.rejected = dict(rejected)
        _finish(report, client, before, start)
        lock.release()
        if on_finish:
            on_finish(report)


def run_feature_batch(client: LLMClient, items: Sequence[Item], store: FeatureStore, *, workers: int | None = None,
                      check: FeatureCheck | None = None, max_tokens: int = 320,
                      progress: Callable[[int], None] | None = None,
                      on_finish: Callable[[BatchReport], None] | None = None) -> BatchReport:
    """Features for every item in ``items`` that has none yet, ``workers`` requests at once.

    Args:
        workers: Requests in flight; default: what the backend serves at once (:func:`concurrency`).
        check: The degenerate-feature check; default: :class:`FeatureCheck` on the feature prompt's wording.
        progress: Called with 1 per item (already done items included, at the start).
        on_finish: Called with the report when the run ends, also when it is interrupted (``interrupted``).

    Raises:
        StateBusy: when another process is writing the same store.
    """
    extractor = ItemFeatureExtractor(client, store, max_tokens=max_tokens)
    check = check or style_check(extractor.style, extractor.template)
    workers = workers or concurrency(client.backend)
    unique = list({item.item_id: item for item in items}.values())
    todo = [item for item in unique if store.get(item.item_id) is None]
    report = BatchReport(kind="features", model_id=client.model_id, workers=workers, requested=len(unique),
                         already_done=len(unique) - len(todo), retried=sum(item.item_id in store for item in todo))
    if progress and report.already_done:
        progress(report.already_done)
    with _run(report, client, store, on_finish) as rejected:
        for item, record in bounded_map(extractor.extract_one, todo, workers):
            if record.features is not None:
                reason = check(record.features, as_data(item.text()), item.title)
                if reason is not None:
                    record = record.model_copy(update={"features": None, "error": DEGENERATE + reason})
                    rejected[reason] += 1
            store.append(record)
            if record.features is not None:
                report.done += 1
            elif not (record.error or "").startswith(DEGENERATE):
                report.failed += 1
            if progress:
                progress(1)
    return report


def style_check(style: str, template) -> Callable[..., str | None]:
    """The degenerate check of a feature style: the open prompt's :class:`FeatureCheck`; none for the closed
    one (its grammar allows only vocabulary words, and repeated themes are merged, so nothing degenerates)."""
    if style == "closed":
        return lambda features, item_text="", title="": None
    return FeatureCheck(prompt_instructions(template))


def recheck_features(store: FeatureStore, catalog: Catalog, check: FeatureCheck | None = None) -> dict[str, int]:
    """Apply the degenerate check (e.g. after its rules changed) to every stored feature record; a record
    that now fails is appended again as failed with the reason. Returns the newly rejected counts by reason."""
    from ..prompts import load_prompt

    check = check or style_check(store.style, load_prompt(TEMPLATES[store.style]))
    rejected: Counter = Counter()
    for record in list(store.records().values()):
        item = catalog.get(record.item_id)
        if record.features is None or item is None:
            continue
        reason = check(record.features, as_data(item.text()), item.title)
        if reason is not None:
            store.append(record.model_copy(update={"features": None, "error": DEGENERATE + reason}))
            rejected[reason] += 1
    return dict(rejected)


def run_profile_batch(client: LLMClient, catalog: Catalog, users: Sequence[tuple[str, list[str], dict[str, float]]],
                      store, *, token_budget: int = 500, workers: int | None = None,
                      progress: Callable[[int], None] | None = None,
                      on_finish: Callable[[BatchReport], None] | None = None) -> BatchReport:
    """Profiles of ``users`` (``(user id, history oldest first, ratings)``), ``workers`` requests at once.

    A user whose stored profile came from the model on the same history is skipped. A failed or
    degenerate reply is stored as the evidence profile (``source="fallback"``, with the reason in
    ``error``), and asked again on the next run (from the reply cache: no new model call).
    Each cached reply is tagged with its user, so ``forget`` finds it.

    Args:
        store: A :class:`~promptrec.distributed.profiles.ProfileStore`.
        on_finish: Called with the report when the run ends, also when it is interrupted (``interrupted``).
    """
    from ..distributed.jobs import _owned_by, history_key
    from ..distributed.profiles import ProfileRecord

    profiler = UserProfiler(client, catalog, token_budget)
    workers = workers or concurrency(client.backend)
    unique = list({u: (u, h, r) for u, h, r in users}.values())

    def fresh(user: str, history: list[str]) -> bool:
        record = store.get(user)
        return record is not None and record.result.source == "llm" and record.history_key == history_key(history)

    todo = [u for u in unique if not fresh(u[0], u[1])]
    report = BatchReport(kind="profiles", model_id=client.model_id, workers=workers, requested=len(unique),
                         already_done=len(unique) - len(todo), retried=sum(store.get(u[0]) is not None for u in todo))
    if progress and report.already_done:
        progress(report.already_done)

    def profile(work: tuple[str, list[str], dict[str, float]]) -> ProfileResult:
        user, history, ratings = work
        with _owned_by(user):
            return profiler.profile(History(items=history, ratings=ratings))

    with _run(report, client, store, on_finish) as rejected:
        for (user, history, ratings), result in bounded_map(profile, todo, workers):
            if result.source == "llm":  # passed the profile gate (repairs included: promptrec.knowledge.users)
                report.done += 1
            elif result.rejected:  # refused by the profile quality gate (promptrec.knowledge.users)
                rejected[result.rejected] += 1
            else:
                report.failed += 1
            store.append(ProfileRecord(user_id=user, result=result, history_key=history_key(history),
                                       model_id=client.model_id, template_hash=profiler.template.hash))
            if progress:
                progress(1)
    return report


__all__ = ["DEGENERATE", "BatchReport", "recheck_features", "run_feature_batch", "run_profile_batch"]
