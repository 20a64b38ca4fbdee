"""Typed containers for items, interactions and what loading dropped."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating")


class Item(BaseModel):
    """One catalog item: an id, a title and free-text fields (genres, tags, ...)."""

    item_id: str
    title: str
    fields: dict[str, str] = Field(default_factory=dict)

    def text(self) -> str:
        """The item as one line of text, for embedding and for prompts."""
        parts = [self.title]
        parts += [f"{name}: {value}" for name, value in self.fields.items() if value]
        return ". ".join(parts)


class LoadReport(BaseModel):
    """What a loader read and what it dropped on purpose, by reason."""

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def __str__(self) -> str:
        text = f"{self.source}: read {self.rows_read:,} rows, kept {self.rows_kept:,}"
        if self.dropped:
            text += " (dropped " + ", ".join(f"{n:,} {why}" for why, n in sorted(self.dropped.items())) + ")"
        return text


def _norm_title(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


def _strip_year(title: str) -> str:
    return re.sub(r"\s*\(\d{4}\)\s*$", "", title).strip()


class Catalog:
    """The items that can be recommended, in a fixed order."""

    def __init__(self, items: Iterable[Item]) -> None:
        self._items: dict[str, Item] = {}
        for item in items:
            self._items.setdefault(item.item_id, item)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __iter__(self):
        return iter(self._items.values())

    def __getitem__(self, item_id: str) -> Item:
        return self._items[item_id]

    def get(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    @property
    def ids(self) -> list[str]:
        return list(self._items)

    @cached_property
    def _title_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for item in self._items.values():
            for key in (_norm_title(item.title), _norm_title(_strip_year(item.title))):
                index.setdefault(key, item.item_id)
            # "Matrix, The (1999)" is also found as "The Matrix"
            bare = _strip_year(item.title)
            match = re.match(r"^(.*), (the|a|an|les|la|le|il|el|das|der|die)$", bare, flags=re.I)
            if match:
                index.setdefault(_norm_title(f"{match.group(2)} {match.group(1)}"), item.item_id)
        return index

    def find(self, text: str) -> Item | None:
        """The item whose id or title best matches ``text`` (exact, then fuzzy); None when nothing is close."""
        text = text.strip()
        if text in self._items:
            return self._items[text]
        key = _norm_title(text)
        if key in self._title_index:
            return self._items[self._title_index[key]]
        close = difflib.get_close_matches(key, list(self._title_index), n=1, cutoff=0.8)
        return self._items[self._title_index[close[0]]] if close else None


def _sort_key(ids: pd.Series) -> pd.Series:
    """Numeric order when every id is a number (MovieLens), else text order."""
    as_num = pd.to_numeric(ids, errors="coerce")
    return as_num if not as_num.isna().any() else ids


class InteractionLog:
    """User-item interactions, each user's history ordered by (timestamp, item id).

    Args:
        frame: Columns ``user_id``, ``item_id`` (str), ``timestamp`` (int seconds), ``rating`` (float or NaN).
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        frame = frame.loc[:, list(INTERACTION_COLUMNS)].copy()
        frame["_key"] = _sort_key(frame["item_id"])
        frame = frame.sort_values(["user_id", "timestamp", "_key"], kind="stable").drop(columns="_key")
        self.frame = frame.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.frame)

    @cached_property
    def _histories(self) -> dict[str, tuple[list[str], list[int]]]:
        out: dict[str, tuple[list[str], list[int]]] = {}
        for user, group in self.frame.groupby("user_id", sort=False):
            out[str(user)] = (group["item_id"].tolist(), group["timestamp"].astype(int).tolist())
        return out

    @property
    def users(self) -> list[str]:
        return list(self._histories)

    def has_user(self, user_id: str) -> bool:
        return user_id in self._histories

    def history(self, user_id: str) -> list[str]:
        """The user's item ids, oldest first. Raises KeyError for an unknown user."""
        return list(self._histories[user_id][0])

    def timestamps(self, user_id: str) -> list[int]:
        return list(self._histories[user_id][1])

    def ratings(self, user_id: str) -> dict[str, float]:
        rows = self.frame[self.frame["user_id"] == user_id]
        return {i: float(r) for i, r in zip(rows["item_id"], rows["rating"]) if not np.isnan(r)}

    @cached_property
    def item_counts(self) -> pd.Series:
        return self.frame["item_id"].value_counts()

    def sequences(self) -> tuple[list[str], list[Sequence[str]], list[Sequence[int]]]:
        users = self.users
        return users, [self._histories[u][0] for u in users], [self._histories[u][1] for u in users]


class Dataset:
    """A catalog plus the interactions on it, and the reports of how both were loaded."""

    def __init__(self, name: str, catalog: Catalog, interactions: InteractionLog, reports: list[LoadReport],
                 users: dict[str, dict[str, str]] | None = None) -> None:
        self.name = name
        self.catalog = catalog
        self.interactions = interactions
        self.reports = reports
        self.users = users  # user id -> attributes (gender, age, ...) when the dataset has a users file

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self.catalog):,} items, {len(self.interactions):,} interactions)"
