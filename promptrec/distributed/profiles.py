"""User profiles made by the profile job, in an append-only JSONL file keyed by user id."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..types import ProfileResult

log = logging.getLogger(__name__)


class ProfileRecord(BaseModel):
    """One user's profile (or the fallback, with why), with the model and prompt that made it."""

    user_id: str
    result: ProfileResult
    history_key: str
    model_id: str
    template_hash: str


class ProfileStore:
    """Profiles in a JSONL file: each record fsynced as written; a half-written last line is cut on open;
    the last record of a user wins."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._records: dict[str, ProfileRecord] | None = None

    def records(self) -> dict[str, ProfileRecord]:
        if self._records is None:
            self._records = {}
            if self.path.exists():
                data = self.path.read_bytes()
                if data and not data.endswith(b"\n"):
                    with self.path.open("rb+") as handle:
                        handle.truncate(data.rfind(b"\n") + 1)
                    log.warning("%s: dropped a half-written last record", self.path)
                for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
                    try:
                        record = ProfileRecord.model_validate(json.loads(line))
                    except (ValidationError, ValueError):
                        log.warning("%s, line %d: unreadable profile record skipped", self.path, number)
                        continue
                    self._records[record.user_id] = record
        return self._records

    def get(self, user_id: str) -> ProfileRecord | None:
        return self.records().get(user_id)

    def __len__(self) -> int:
        return len(self.records())

    def append(self, record: ProfileRecord) -> None:
        records = self.records()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(record.model_dump_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        records[record.user_id] = record
