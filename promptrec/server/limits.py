"""Bounded work: ``concurrency`` pipeline runs at once, a small queue, and 503 for the rest.

The pipeline (retrieval, the language model) is blocking code, so it runs in worker threads, never
on the event loop. Admission is decided without waiting: a request either gets a place (running or
queued) at once or :class:`Overloaded` is raised, which the app answers with 503.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Overloaded(Exception):
    """Every slot and queue place is taken (or a queued request waited too long)."""


class Slots:
    """Runs callables in worker threads, at most ``concurrency`` at once, with ``queue`` waiting.

    Args:
        concurrency: Callables running at once.
        queue: Callables allowed to wait for a running slot.
        queue_timeout_s: How long a queued callable waits before it fails with Overloaded.
    """

    def __init__(self, concurrency: int, queue: int, queue_timeout_s: float) -> None:
        if concurrency < 1 or queue < 0:
            raise ValueError("concurrency must be >= 1 and queue >= 0")
        self.concurrency, self.queue, self.queue_timeout_s = concurrency, queue, queue_timeout_s
        self._admitted = threading.BoundedSemaphore(concurrency + queue)
        self._running = threading.Semaphore(concurrency)
        self._count_lock = threading.Lock()
        self._counts = {"running": 0, "queued": 0, "rejected": 0, "completed": 0}
        self._executor = ThreadPoolExecutor(max_workers=concurrency + queue, thread_name_prefix="promptrec-serve")

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Schedule ``fn(*args)``; raises Overloaded at once when no place is free."""
        if not self._admitted.acquire(blocking=False):
            self._count("rejected", 1)
            raise Overloaded(f"server busy: {self.concurrency} requests running and {self.queue} waiting; retry shortly")
        self._count("queued", 1)
        try:
            future = self._executor.submit(self._run, fn, args)
        except BaseException:
            self._count("queued", -1)
            self._admitted.release()
            raise
        future.add_done_callback(self._release)  # runs however the future ends, cancelled included
        return future

    def _release(self, future: Future) -> None:
        if future.cancelled():  # never started
            self._count("queued", -1)
        self._admitted.release()

    def _run(self, fn: Callable[..., Any], args: tuple) -> Any:
        got = self._running.acquire(timeout=self.queue_timeout_s)
        self._count("queued", -1)
        if not got:
            self._count("rejected", 1)
            raise Overloaded(f"server busy: no slot free within {self.queue_timeout_s:g} s; retry shortly")
        self._count("running", 1)
        try:
            return fn(*args)
        finally:
            self._count("running", -1)
            self._count("completed", 1)
            self._running.release()

    def _count(self, name: str, delta: int) -> None:
        with self._count_lock:
            self._counts[name] += delta

    def stats(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self._counts, concurrency=self.concurrency, queue=self.queue)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
