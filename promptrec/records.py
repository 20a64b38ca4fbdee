"""A resumable JSONL log of pydantic records: one line per record, appended as work finishes.

A rerun loads what is done and skips it. A line cut short by an interruption (the last one) is
dropped on the next append and its work is redone; any other unreadable line is an error that
names the file and line, because silently skipping it would hide lost work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

from .errors import StoreError

R = TypeVar("R", bound=BaseModel)


class RecordLog(Generic[R]):
    """Append-only JSONL of ``model`` records; the last record of a key wins.

    Args:
        path: The JSONL file (created on the first append).
        model: The record type.
        key: What identifies a unit of work (e.g. the user id).
    """

    def __init__(self, path: Path, model: type[R], key: Callable[[R], Hashable]) -> None:
        self.path = Path(path)
        self.model = model
        self.key = key

    def load(self) -> dict[Hashable, R]:
        """Every readable record by key. Raises StoreError for an unreadable line other than the last."""
        records: dict[Hashable, R] = {}
        if not self.path.exists():
            return records
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = self.model.model_validate_json(line)
            except ValueError as error:
                if number == len(lines):
                    continue  # cut short by an interruption: that work is redone
                raise StoreError(f"{self.path}:{number}: unreadable record ({str(error).splitlines()[0]}); "
                                 "delete that line (or the file) to redo its work") from error
            records[self.key(record)] = record
        return records

    def append(self, record: R) -> None:
        """Write one record as a line, flushed to disk; a cut-off last line is removed first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as handle:
            if handle.seek(0, 2):
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":  # a line cut short by an interruption: drop it
                    handle.seek(0)
                    handle.truncate(handle.read().rfind(b"\n") + 1)
            handle.write(record.model_dump_json().encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())


class KeyedStore(Generic[R]):
    """The records of a :class:`RecordLog` by key, read once and kept current as records are appended."""

    def __init__(self, path: Path, model: type[R], key: Callable[[R], Hashable]) -> None:
        self.path = Path(path)
        self.log = RecordLog(self.path, model, key)
        self._records: dict[Hashable, R] | None = None

    def records(self) -> dict[Hashable, R]:
        if self._records is None:
            self._records = self.log.load()
        return self._records

    def record(self, key: Hashable) -> R | None:
        return self.records().get(key)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.records()

    def __len__(self) -> int:
        return len(self.records())

    def append(self, record: R) -> None:
        records = self.records()
        self.log.append(record)
        records[self.log.key(record)] = record


__all__ = ["KeyedStore", "RecordLog"]
