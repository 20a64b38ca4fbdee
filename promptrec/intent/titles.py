"""Titles named in a request, resolved against the catalog: exact, then fuzzy, with 'did you mean'."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cached_property

from ..data import Catalog

_ARTICLE = re.compile(r"^(.*), (the|a|an|les|la|le|il|el|das|der|die)$", re.I)


def normalise(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


def title_keys(title: str) -> list[str]:
    """The forms a title is found by: as written, without its year, with a trailing article moved to the front."""
    bare = re.sub(r"\s*\(\d{4}[^)]*\)\s*$", "", title).strip()
    keys = [normalise(title), normalise(bare)]
    match = _ARTICLE.match(bare)
    if match:
        keys += [normalise(f"{match.group(2)} {match.group(1)}"), normalise(match.group(1))]
    return list(dict.fromkeys(k for k in keys if k))


@dataclass
class Resolution:
    """What a named title resolved to."""

    text: str
    item_id: str | None = None
    alternatives: list[str] = field(default_factory=list)  # other item ids it may mean (ambiguous or not found)

    @property
    def ambiguous(self) -> bool:
        return self.item_id is not None and bool(self.alternatives)


class TitleResolver:
    """Finds catalog items by title.

    An exact match (ignoring case, punctuation, the year and a trailing article) wins; several items
    with that title (remakes) resolve to the first in catalog order and list the others as
    alternatives; otherwise a close fuzzy match (ratio ≥ ``cutoff``) resolves, and weaker ones are
    offered as 'did you mean' alternatives only.
    """

    def __init__(self, catalog: Catalog, cutoff: float = 0.85, suggest_cutoff: float = 0.7) -> None:
        self.catalog = catalog
        self.cutoff = cutoff
        self.suggest_cutoff = suggest_cutoff

    @cached_property
    def _index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for item in self.catalog:
            for key in title_keys(item.title):
                index.setdefault(key, []).append(item.item_id)
        return index

    def resolve(self, text: str) -> Resolution:
        text = " ".join(str(text).split()).strip(" .,!?;:'\"")
        if not text:
            return Resolution(text)
        if text in self.catalog:
            return Resolution(text, text)
        key = normalise(text)
        exact = self._index.get(key)
        if exact:
            return Resolution(text, exact[0], exact[1:4])
        close = difflib.get_close_matches(key, list(self._index), n=4, cutoff=self.suggest_cutoff)
        ids = list(dict.fromkeys(i for k in close for i in self._index[k]))
        if close and difflib.SequenceMatcher(None, key, close[0]).ratio() >= self.cutoff:
            return Resolution(text, ids[0], ids[1:4])
        return Resolution(text, None, ids[:3])

    def title(self, item_id: str) -> str:
        item = self.catalog.get(item_id)
        return item.title if item else item_id
