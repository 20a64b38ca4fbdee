"""A persistent, content-addressed cache of model replies (SQLite, safe for concurrent writers)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
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
)
"""


def cache_key(model_id: str, template_hash: str, request: ChatRequest) -> str:
    """sha256 of (model, prompt template version, messages, parameters) as sorted JSON."""
    payload = {"model": model_id, "template": template_hash, "request": request.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class LLMCache:
    """Replies keyed by :func:`cache_key`.

    Several processes may share one file: SQLite's write-ahead log serialises writers, and a key
    is written once (the first reply wins; with temperature 0 all replies are the same).

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
                self._db.execute(SCHEMA)
                self._db.commit()
        except sqlite3.DatabaseError as err:  # not a SQLite file, or one that cannot be opened or written
            raise StoreError(f"cannot use the LLM reply cache {self.path} ({err}); delete the file "
                             "(it only holds cached replies and is rebuilt)") from None

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, seconds FROM replies WHERE key = ?", (key,)
            ).fetchone()
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
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
