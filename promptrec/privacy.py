"""Forgetting a user: delete everything promptrec derived from that user's data under the state dir.

What is derived from a user's data, and what :func:`forget_user` does with it:

- model replies whose prompt held the user's history (profile, rerank): tagged with
  :func:`user_tag` when written or read, deleted, and the SQLite file rebuilt so the bytes are gone;
- evaluation records naming the user (``*.jsonl`` lines with ``"user"``/``"user_id"`` equal to the
  id, e.g. ``eval/rerank-records/*.jsonl``): those lines are removed and the files rewritten;
- user profiles (``derived/<dataset>/profiles.jsonl``, written by the profile job and by the product
  the first time it profiles a history): the user's records are removed and the file rewritten;
- fitted collaborative models (``collab-*.npz``): fitted on every user's interactions, so deleted;
  they are refitted from the data on next use (remove the user from the data to keep them out);
  so are the new-item transfer maps (``transfer-*.npz`` + ``.json``), whose space is fitted on them too.

Item vectors and item features come from catalog text only and are kept. The source data is
never touched: it belongs to whoever supplied it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from filelock import FileLock, Timeout
from pydantic import BaseModel, Field

from .errors import StoreError
from .llm.cache import LLMCache
from .settings import Settings
from .state import DERIVED

__all__ = ["ForgetReport", "drop_user_lines", "forget_user", "user_tag"]

USER_KEYS = ("user", "user_id")


def user_tag(user_id: str | int) -> str:
    """The owner tag of a user's cached replies (a hash: the cache never stores the id itself)."""
    return hashlib.sha256(b"promptrec-user\0" + str(user_id).encode()).hexdigest()[:32]


class ForgetReport(BaseModel):
    """What :func:`forget_user` deleted."""

    user: str
    cache_replies: int = Field(0, description="Cached model replies whose prompt held the user's history.")
    cache_untagged: int = Field(0, description="Cached replies with no owner tag that were kept.")
    record_lines: int = Field(0, description="Evaluation record lines naming the user.")
    record_files: list[str] = Field(default_factory=list, description="Files rewritten without those lines.")
    collab_models: int = Field(0, description="Fitted collaborative models deleted (refitted on next use).")
    profiles: int = Field(0, description="In-memory profiles dropped.")
    profile_records: int = Field(0, description="Stored profile records removed (derived/*/profiles.jsonl).")

    def summary(self) -> str:
        lines = [
            f"Forgot user {self.user}:",
            f"  {self.cache_replies} cached model replies deleted (file rebuilt, write-ahead log emptied)",
            f"  {self.record_lines} evaluation record lines removed from {len(self.record_files)} files",
            f"  {self.profile_records} stored profiles removed",
            f"  {self.collab_models} fitted collaborative models deleted (refitted from the data on next use)",
        ]
        if self.profiles:
            lines.append(f"  {self.profiles} in-memory profiles dropped")
        if self.cache_untagged:
            lines.append(f"  note: {self.cache_untagged} cached replies carry no user tag (item features, ad-hoc "
                         "histories, or written by an older version); delete llm-cache.sqlite to remove them too")
        return "\n".join(lines)


def _names_user(line: bytes, user: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return json.dumps(user).encode() in line  # unreadable: dropped if it could name the user
    return isinstance(record, dict) and any(
        record.get(key) is not None and str(record.get(key)) == user for key in USER_KEYS)


def drop_user_lines(path: Path, user: str) -> int:
    """Rewrite a JSONL file without the lines naming ``user`` (atomically); returns how many were dropped."""
    lines = Path(path).read_bytes().split(b"\n")
    kept = [line for line in lines if not (line.strip() and _names_user(line, user))]
    dropped = len(lines) - len(kept)
    if dropped:
        tmp = path.with_name(f".{path.name}.forget{os.getpid()}")
        with tmp.open("wb") as handle:
            handle.write(b"\n".join(kept))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    return dropped


def _record_files(state_dir: Path) -> list[Path]:
    derived = state_dir / DERIVED
    return sorted(p for p in state_dir.rglob("*.jsonl") if p.is_file() and derived not in p.parents)


def _profile_files(state_dir: Path) -> list[Path]:
    """Every dataset's stored user profiles (see :attr:`promptrec.state.DatasetState.profiles`)."""
    return sorted(p for p in (state_dir / DERIVED).glob("*/profiles.jsonl") if p.is_file())


def forget_user(settings: Settings, user_id: str | int) -> ForgetReport:
    """Delete what the state dir holds that was derived from ``user_id``'s data (see the module doc).

    Raises:
        StoreError: when the reply cache is kept busy by another process.
    """
    user = str(user_id)
    report = ForgetReport(user=user)
    state_dir = Path(settings.state_dir).expanduser()
    if settings.llm_cache_path.exists():
        cache = LLMCache(settings.llm_cache_path)
        try:
            report.cache_replies = cache.forget(user_tag(user))
            report.cache_untagged = cache.untagged()
        except sqlite3.OperationalError as err:
            raise StoreError(f"cannot clean the reply cache {settings.llm_cache_path} ({err}); stop the other "
                             "promptrec processes and run forget again") from None
        finally:
            cache.close()
    if state_dir.exists():
        for path in _record_files(state_dir):
            dropped = drop_user_lines(path, user)
            if dropped:
                report.record_lines += dropped
                report.record_files.append(str(path.relative_to(state_dir)))
        for path in _profile_files(state_dir):
            try:
                with FileLock(str(path) + ".lock", timeout=60):  # the lock the profile writers take
                    report.profile_records += drop_user_lines(path, user)
            except Timeout:
                raise StoreError(f"cannot clean {path}: another promptrec process keeps writing it; stop it and "
                                 "run forget again") from None
        for model in [*state_dir.rglob("collab-*.npz"), *state_dir.rglob("transfer-*.npz"),
                      *state_dir.rglob("fusion-model.json")]:  # a learned fusion is trained on every user's pools too
            model.unlink(missing_ok=True)
            model.with_suffix(".json").unlink(missing_ok=True)  # a transfer map's metadata
            report.collab_models += 1
    return report
