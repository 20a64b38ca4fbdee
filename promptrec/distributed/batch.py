"""Evaluation-style batch work on Ray: recommendation lists for many users, one Recommender per worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from ..records import KeyedStore
from ..types import RecommendationList
from .runner import JobReport, run_shards, shards, write_once

_RECOMMENDERS: dict[bytes, object] = {}  # one per worker process and factory


class ListRecord(BaseModel):
    """One user's recommendation list (or why there is none)."""

    user_id: str
    result: RecommendationList | None = None
    error: str | None = None


class ListStore(KeyedStore[ListRecord]):
    """Lists in an append-only JSONL file keyed by user id (a :class:`~promptrec.records.RecordLog`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, ListRecord, key=lambda record: record.user_id)

    def get(self, user_id: str) -> ListRecord | None:
        return self.record(user_id)


def recommend_shard(shard: tuple[int, list[str]], factory: Callable[[], object], k: int,
                    request: str | None) -> tuple[str, list[ListRecord]]:
    """A Ray task: lists for a shard of users from this worker's Recommender (built once per worker)."""
    from ray import cloudpickle

    from ..errors import PromptrecError
    from .jobs import _worker_name

    key = cloudpickle.dumps(factory)
    if key not in _RECOMMENDERS:
        _RECOMMENDERS[key] = factory()
    rec = _RECOMMENDERS[key]
    out = []
    for user in shard[1]:
        try:
            out.append(ListRecord(user_id=user, result=rec.recommend(user, k=k, request=request)))
        except PromptrecError as err:
            out.append(ListRecord(user_id=user, error=str(err)))
    return _worker_name(), out


def run_recommend_job(recommender_factory: Callable[[], object], user_ids: Sequence[str], store: ListStore, *,
                      k: int = 10, request: str | None = None, ray_address: str | None = None, workers: int = 2,
                      shard_size: int = 8, max_retries: int = 3,
                      progress: Callable[[int], None] | None = None) -> JobReport:
    """Top-``k`` lists for many users (an evaluation run, a nightly batch) on a Ray cluster.

    ``recommender_factory()`` builds a :class:`promptrec.Recommender` on each worker (it must be importable
    there, and every worker must reach the vector store: a Chroma server via ``PROMPTREC_STORE__URL``, or its
    own store). Users that already have a list in ``store`` are skipped; each list is written once.
    """
    users = [u for u in dict.fromkeys(map(str, user_ids)) if u not in store.records()]
    report = JobReport(requested=len(set(map(str, user_ids))))
    report.already_done = report.requested - len(users)
    write = write_once(store, key=lambda r: r.user_id, ok=lambda r: r.result is not None)

    if not users:
        return report
    return run_shards(recommend_shard, list(enumerate(shards(users, shard_size))), (recommender_factory, k, request),
                      write, ray_address=ray_address, workers=workers, max_retries=max_retries, progress=progress,
                      report=report)
