"""Run shards of work as Ray tasks and hand each finished shard's records to the driver, in order of finishing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from ..errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")


class JobReport(BaseModel):
    """What one distributed job did."""

    requested: int = 0
    already_done: int = Field(0, description="Keys that had a record before the job (not sent to workers).")
    written: int = Field(0, description="Records the driver wrote.")
    failed: int = Field(0, description="Records written with an error (the model failed or replied invalidly).")
    duplicates_skipped: int = Field(0, description="Records for keys already written (a retried or repeated shard).")
    lost_shards: int = Field(0, description="Shards that failed even after retries; rerun the job to redo them.")
    shards: int = 0
    workers: int = 0
    seconds: float = 0.0
    items_per_s: float = 0.0
    per_worker: dict[str, int] = Field(default_factory=dict, description="Records computed by each worker process.")


def shards(work: Sequence[T], size: int) -> list[list[T]]:
    """``work`` cut into consecutive shards of at most ``size``."""
    if size < 1:
        raise ConfigError("shard size must be at least 1")
    return [list(work[i:i + size]) for i in range(0, len(work), size)]


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("distributed jobs need Ray: pip install 'promptrec[ray]'") from None
    return ray


@contextmanager
def ray_cluster(address: str | None, workers: int) -> Iterator[Any]:
    """Connect to the cluster at ``address`` ("auto", "ray://host:10001", ...), or start a local one with
    ``workers`` CPUs when ``address`` is None or "local"; an already connected session is used as is."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    if address in (None, "", "local"):
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def write_once(store, key: Callable[[Any], str], ok: Callable[[Any], bool],
               skip: Callable[[str], bool] = lambda key: False) -> Callable[[Any], str]:
    """The driver's writer for :func:`run_shards`: appends each record to ``store`` once per key
    (a retried shard's repeat is a "duplicate"; so is a key ``skip`` says is done) and says whether
    it was "written" (``ok``) or "failed"."""
    written: set[str] = set()

    def write(record) -> str:
        name = key(record)
        if name in written or skip(name):
            return "duplicate"
        store.append(record)
        written.add(name)
        return "written" if ok(record) else "failed"

    return write


def run_shards(
    task: Callable[..., tuple[str, list]],
    work: list[list],
    args: tuple,
    write: Callable[[Any], str],
    *,
    ray_address: str | None = None,
    workers: int = 2,
    max_retries: int = 3,
    retry_exceptions: bool = True,
    progress: Callable[[int], None] | None = None,
    report: JobReport | None = None,
) -> JobReport:
    """Run ``task(shard, *args)`` for every shard on Ray, at most ``workers`` at a time.

    ``task`` returns ``(worker_name, records)``; the driver calls ``write(record)`` for each record
    as its shard finishes; ``write`` says what it did: "written", "failed" (written, with an error) or
    "duplicate" (a key it already has: nothing written). A shard whose worker died
    or whose task raised is retried up to ``max_retries`` times; one that still fails is counted in
    ``lost_shards`` and logged, and the job goes on.
    """
    report = report or JobReport()
    report.shards, report.workers = len(work), workers
    with ray_cluster(ray_address, workers) as ray:
        start = time.perf_counter()  # the cluster's own start-up is not the job's
        remote = ray.remote(task).options(num_cpus=1, max_retries=max_retries, retry_exceptions=retry_exceptions)
        shared = [ray.put(a) for a in args]
        queue = list(work)
        running: dict = {}
        while queue or running:
            while queue and len(running) < workers:
                shard = queue.pop(0)
                running[remote.remote(shard, *shared)] = shard
            done, _ = ray.wait(list(running), num_returns=1)
            shard = running.pop(done[0])
            try:
                worker, records = ray.get(done[0])
            except ray.exceptions.RayError as err:
                report.lost_shards += 1
                log.warning("shard %s failed after %d retries: %s", shard[0] if isinstance(shard, tuple) else "",
                            max_retries, err)
                continue
            report.per_worker[worker] = report.per_worker.get(worker, 0) + len(records)
            for record in records:
                outcome = write(record)
                report.written += outcome != "duplicate"
                report.failed += outcome == "failed"
                report.duplicates_skipped += outcome == "duplicate"
            if progress:
                progress(len(records))
        report.seconds = round(time.perf_counter() - start, 3)
    done_items = sum(report.per_worker.values())
    report.items_per_s = round(done_items / report.seconds, 3) if report.seconds else 0.0
    return report
