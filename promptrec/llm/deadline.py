"""One time limit for a whole request, shared by every model call made while serving it.

The pipeline opens a :func:`deadline` around a request; :class:`~promptrec.llm.client.LLMClient`
gives each call the time that is left as its timeout and asks nothing once it has passed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .base import LLMError


class DeadlineExceeded(LLMError):
    """The request's time limit passed before the model answered."""


class Deadline:
    """A point in (monotonic) time ``seconds`` from now."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.at = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def describe(self) -> str:
        return f"the {self.seconds:g} s deadline for this request"


_current: ContextVar[Deadline | None] = ContextVar("promptrec_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the request being served in this context, if any."""
    return _current.get()


@contextmanager
def deadline(seconds: float | None) -> Iterator[Deadline | None]:
    """Model calls inside the block share one deadline of ``seconds`` (None: no limit).

    A block nested in another keeps the earlier of the two deadlines.
    """
    with within(Deadline(seconds) if seconds is not None else None) as chosen:
        yield chosen


@contextmanager
def within(limit: Deadline | None) -> Iterator[Deadline | None]:
    """Model calls inside the block share the deadline ``limit`` made earlier (one request's steps
    run apart, e.g. between the events of a stream, and keep one clock); None keeps the surrounding
    deadline. A block nested in another keeps the earlier of the two."""
    outer = _current.get()
    chosen = limit if outer is None or (limit is not None and limit.at < outer.at) else outer
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)
