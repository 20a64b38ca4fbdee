"""User profiles in an append-only JSONL file: made by the profile job, or by the product the first time
it profiles a history, and reused by every later call, turn and process.

A record is keyed by (user, history hash, model, prompt template hash): a profile is reused only for
the exact history, model and prompt that made it. :meth:`ProfileStore.get` answers a user's latest
record (what the batch job resumes from); :meth:`ProfileStore.find` the one matching all four.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock, Timeout
from pydantic import BaseModel

from ..records import KeyedStore
from ..types import ProfileResult

log = logging.getLogger(__name__)


def history_key(history: Sequence[str]) -> str:
    """A short hash of a history's item ids, in order."""
    return hashlib.sha256("\n".join(history).encode()).hexdigest()[:16]


class ProfileRecord(BaseModel):
    """One user's profile (or the fallback, with why), with the model and prompt that made it."""

    user_id: str
    result: ProfileResult
    history_key: str
    model_id: str
    template_hash: str


def record_key(record: ProfileRecord) -> tuple[str, str, str, str]:
    return (record.user_id, record.history_key, record.model_id, record.template_hash)


class ProfileStore(KeyedStore[ProfileRecord]):
    """Profiles in an append-only JSONL file (a :class:`~promptrec.records.RecordLog`), keyed by
    (user, history hash, model, template hash); ``len`` counts users."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, ProfileRecord, key=record_key)
        self._latest: dict[str, ProfileRecord] | None = None

    def _by_user(self) -> dict[str, ProfileRecord]:
        if self._latest is None:
            records = self.records()
            self._latest = {record.user_id: record for record in records.values()}
        return self._latest

    def get(self, user_id: str) -> ProfileRecord | None:
        """The user's most recently written record, whatever its history or model."""
        return self._by_user().get(user_id)

    def find(self, user_id: str, history: str, model_id: str, template_hash: str) -> ProfileRecord | None:
        """The record made from exactly this history (its :func:`history_key`), model and prompt."""
        return self.record((user_id, history, model_id, template_hash))

    def __len__(self) -> int:
        return len(self._by_user())

    def append(self, record: ProfileRecord) -> None:
        super().append(record)
        self._by_user()[record.user_id] = record

    def try_append(self, record: ProfileRecord, wait_s: float = 2.0) -> bool:
        """Append under the file's lock (the one the profile job holds while it writes); when another
        process holds it longer than ``wait_s``, write nothing and say so (the profile is made again
        next time)."""
        lock = FileLock(str(self.path) + ".lock")
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            log.info("%s is being written by another process; profile of %s kept in memory only", self.path,
                     record.user_id)
            return False
        try:
            self.append(record)
        finally:
            lock.release()
        return True

    def reload(self) -> None:
        """Read the file again on next use (after another process or ``forget`` changed it)."""
        self._records = None
        self._latest = None
