"""User profiles made by the profile job, in an append-only JSONL file keyed by user id."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..records import KeyedStore
from ..types import ProfileResult


class ProfileRecord(BaseModel):
    """One user's profile (or the fallback, with why), with the model and prompt that made it."""

    user_id: str
    result: ProfileResult
    history_key: str
    model_id: str
    template_hash: str


class ProfileStore(KeyedStore[ProfileRecord]):
    """Profiles in an append-only JSONL file (a :class:`~promptrec.records.RecordLog`); the last record
    of a user wins."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, ProfileRecord, key=lambda record: record.user_id)

    def get(self, user_id: str) -> ProfileRecord | None:
        return self.record(user_id)
