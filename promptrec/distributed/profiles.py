"""User profiles made by the profile job: the store lives in :mod:`promptrec.knowledge.profile_store`
(the product reads and writes the same file)."""

from __future__ import annotations

from ..knowledge.profile_store import ProfileRecord, ProfileStore, history_key

__all__ = ["ProfileRecord", "ProfileStore", "history_key"]
