"""Chat sessions by id: a bounded number, least recently used evicted first, idle ones expire."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..chat import ChatSession
from .limits import Overloaded


class SessionBusy(Exception):
    """Another line of the same session is still being answered."""


@dataclass
class SessionEntry:
    session: ChatSession
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)


class SessionStore:
    """At most ``max_sessions`` sessions; one idle for ``ttl_s`` seconds is dropped.

    Args:
        factory: Builds a new ChatSession.
        clock: Monotonic seconds (tests pass a fake).
    """

    def __init__(self, factory: Callable[[], ChatSession], max_sessions: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory, self.max_sessions, self.ttl_s, self._clock = factory, max_sessions, ttl_s, clock
        self._entries: OrderedDict[str, SessionEntry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._entries)

    def get(self, session_id: str) -> SessionEntry:
        """The session's entry, created when new. Raises Overloaded when full of busy sessions."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(session_id)
            if entry is None:
                if len(self._entries) >= self.max_sessions and not self._evict_idle():
                    raise Overloaded(f"too many chat sessions ({self.max_sessions}) are busy; retry shortly")
                entry = self._entries[session_id] = SessionEntry(self._factory(), last_used=now)
            self._entries.move_to_end(session_id)
            entry.last_used = now
            return entry

    def drop(self, session_id: str) -> bool:
        with self._lock:
            return self._entries.pop(session_id, None) is not None

    def drop_user(self, user_id: str) -> int:
        """Forget every session talking about ``user_id``; returns how many."""
        with self._lock:
            gone = [sid for sid, e in self._entries.items() if e.session.user_id == user_id]
            for sid in gone:
                del self._entries[sid]
            return len(gone)

    def _expire(self, now: float) -> None:
        for sid in [sid for sid, e in self._entries.items() if now - e.last_used > self.ttl_s and not e.lock.locked()]:
            del self._entries[sid]

    def _evict_idle(self) -> bool:
        for sid, entry in self._entries.items():  # oldest first
            if not entry.lock.locked():
                del self._entries[sid]
                return True
        return False
