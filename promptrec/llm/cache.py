"""A persistent, content-addressed cache of model replies (SQLite, safe for concurrent writers).

Replies written while a user's history is in the prompt are tagged with that user's owner tag
(:func:`cache_owner`), so that :meth:`LLMCache.forget` can delete them for good.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..errors import StoreError
from .types import ChatRequest, ChatResponse

SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    template_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (key, owner)
);
CREATE INDEX IF NOT EXISTS owners_by_owner ON owners (owner);
"""

_owner: ContextVar[str | None] = ContextVar("promptrec_cache_owner", default=None)


@contextmanager
def cache_owner(tag: str | None) -> Iterator[None]:
    """Replies read or written inside this block are tagged with ``tag`` (None: untagged)."""
    token = _owner.set(tag)
    try:
        yield
    finally:
        _owner.reset(token)


def cache_key(model_id: str, template_hash: str, request: ChatRequest) -> str:
    """sha256 of (model, prompt template version, messages, parameters) as sorted JSON."""
    payload = {"model": model_id, "template": template_hash, "request": request.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class LLMCache:
    """Replies keyed by :func:`cache_key`.

    Several processes may share one file: SQLite's write-ahead log serialises writers, and a key
    is written once (the first reply wins; with temperature 0 all replies are the same).
    Deleted content is overwritten (``secure_delete``).

    Args:
        path: The SQLite file; ``None`` keeps the cache in memory (tests, ``--no-cache``).
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=60, check_same_thread=False)
            with self._lock:
                if self.path is not None:
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA secure_delete=ON")
                self._db.executescript(SCHEMA)
                self._db.commit()
        except sqlite3.DatabaseError as err:  # not a SQLite file, or one that cannot be opened or written
            raise StoreError(f"cannot use the LLM reply cache {self.path} ({err}); delete the file "
                             "(it only holds cached replies and is rebuilt)") from None

    def _tag(self, key: str) -> None:
        owner = _owner.get()
        if owner is not None:
            self._db.execute("INSERT OR IGNORE INTO owners (key, owner) VALUES (?, ?)", (key, owner))

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, seconds FROM replies WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and _owner.get() is not None:
                self._tag(key)  # a reply another user's (identical) prompt wrote is this user's too
                self._db.commit()
        if row is None:
            return None
        return ChatResponse(text=row[0], prompt_tokens=row[1], completion_tokens=row[2], seconds=row[3], cached=True)

    def put(self, key: str, model_id: str, template_hash: str, response: ChatResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO replies (key, model_id, template_hash, text, prompt_tokens, completion_tokens,"
                " seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model_id, template_hash, response.text, response.prompt_tokens, response.completion_tokens,
                 response.seconds, time.time()),
            )
            self._tag(key)
            self._db.commit()

    def owned(self, owner: str) -> int:
        """How many replies carry ``owner``'s tag."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM owners WHERE owner = ?", (owner,)).fetchone()[0]

    def untagged(self) -> int:
        """How many replies carry no owner tag (ad-hoc histories, item features, or older versions)."""
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM replies WHERE key NOT IN (SELECT key FROM owners)").fetchone()[0]

    def forget(self, owner: str) -> int:
        """Delete every reply tagged with ``owner`` and make the bytes unrecoverable from the file:
        ``secure_delete`` zeroes freed content, VACUUM rebuilds the file, and the write-ahead log
        is checkpointed and truncated. Returns how many replies were deleted.

        Raises:
            sqlite3.OperationalError: when another process keeps the file busy past the timeout.
        """
        with self._lock:
            keys = [k for (k,) in self._db.execute("SELECT key FROM owners WHERE owner = ?", (owner,))]
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executemany("DELETE FROM replies WHERE key = ?", [(k,) for k in keys])
            self._db.executemany("DELETE FROM owners WHERE key = ?", [(k,) for k in keys])
            self._db.commit()
            if self.path is not None:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("VACUUM")
                busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if busy:
                    raise sqlite3.OperationalError(f"{self.path} is in use by another process; its write-ahead "
                                                   "log could not be emptied")
            return len(keys)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
