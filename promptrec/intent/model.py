"""What a typed request asks for, as a typed :class:`Intent`, and how a catalog item is checked against it.

An intent has four kinds of content:

- **anchors**: items the user names as a reference ("more like Heat");
- **exclusions**: items and genres never to show ("not Heat", "no horror");
- **hard filters**: genres, a year range and an audience that every shown item must satisfy;
- **soft descriptors**: moods, themes and adjustments ("lighter", "scarier") that steer but never filter;

plus the free text that remains. Hard filters and exclusions are enforced (:meth:`Intent.allows`);
soft descriptors only enter the request text that retrieval and the model read.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from ..data import Item

Audience = Literal["kids", "family", "adults"]
KIDS_GENRES = ("Children",)  # a kids filter needs a Children genre: animated films for adults exist
_YEAR = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


def item_year(item: Item) -> int | None:
    """The release year in a MovieLens-style title ("Heat (1995)") or a ``year`` field."""
    value = item.fields.get("year", "")
    if value.strip().isdigit():
        return int(value.strip())
    match = _YEAR.search(item.title)
    return int(match.group(1)) if match else None


def item_genres(item: Item) -> set[str]:
    return {g.strip().lower() for g in item.fields.get("genres", "").replace("|", ",").split(",") if g.strip()}


class Intent(BaseModel):
    """A request, understood. Item references are catalog ids (resolved), genres use the catalog's names."""

    anchors: list[str] = Field(default_factory=list, description="Item ids the user wants more like.")
    exclude_items: list[str] = Field(default_factory=list, description="Item ids never to show.")
    exclude_genres: list[str] = Field(default_factory=list, description="Genres never to show.")
    genres: list[str] = Field(default_factory=list, description="Hard filter: a shown item has every one.")
    year_min: int | None = None
    year_max: int | None = None
    audience: Audience | None = None
    era: Literal["older", "newer"] | None = Field(None, description="Relative: older or newer than what was shown.")
    moods: list[str] = Field(default_factory=list, description="Soft: the tone wanted (light, dark, ...).")
    themes: list[str] = Field(default_factory=list, description="Soft: subjects or settings wanted.")
    text: str = Field("", description="What remains of the request, for retrieval and the model.")
    unresolved: list[str] = Field(default_factory=list, description="Titles named that match no catalog item.")
    suggestions: dict[str, list[str]] = Field(default_factory=dict, description="Unresolved title -> 'did you mean' titles.")
    alternatives: dict[str, list[str]] = Field(default_factory=dict,
                                               description="Resolved item id -> other titles it may have meant (remakes).")
    source: Literal["llm", "rules"] = "rules"
    ungrounded: int = Field(0, description="Parts of the model's reading dropped because the request does not support them.")
    error: str | None = Field(None, description="Why the model's reading was not used, when it was not.")

    # ----- what it asks -----
    @property
    def has_filters(self) -> bool:
        return bool(self.genres or self.exclude_genres or self.exclude_items or self.audience
                    or self.year_min is not None or self.year_max is not None)

    @property
    def is_empty(self) -> bool:
        return not (self.has_filters or self.anchors or self.era or self.moods or self.themes or self.text.strip())

    def allows(self, item: Item) -> bool:
        """True when ``item`` satisfies every hard filter and exclusion (soft descriptors never exclude)."""
        if item.item_id in self.exclude_items:
            return False
        genres = item_genres(item)
        if genres & {g.lower() for g in self.exclude_genres}:
            return False
        if not {g.lower() for g in self.genres} <= genres:
            return False
        if self.audience == "kids" and not genres & {g.lower() for g in KIDS_GENRES}:
            return False
        if self.audience in ("kids", "family") and "horror" in genres:
            return False
        if self.year_min is not None or self.year_max is not None:
            year = item_year(item)
            if year is None:
                return False
            if self.year_min is not None and year < self.year_min:
                return False
            if self.year_max is not None and year > self.year_max:
                return False
        return True

    def matched(self, item: Item, titles: dict[str, str] | None = None) -> list[str]:
        """What of this intent ``item`` verifiably satisfies (its genres, audience, years, named
        anchors), in words, for explanations that speak to the request."""
        titles = titles or {}
        genres = item_genres(item)
        parts = [g for g in self.genres if g.lower() in genres]
        if self.audience == "kids" and genres & {g.lower() for g in KIDS_GENRES}:
            parts.append("for kids")
        year = item_year(item)
        if year is not None and (self.year_min is not None or self.year_max is not None):
            parts.append(f"from {year}")
        if self.exclude_genres:
            parts.append("no " + ", ".join(self.exclude_genres))
        return parts

    def query_text(self, titles: dict[str, str] | None = None) -> str:
        """The request as text to embed: genres, audience, moods, themes, anchors' titles, the rest."""
        parts = [*self.genres, *(["for children"] if self.audience == "kids" else []),
                 *(["for the whole family"] if self.audience == "family" else []),
                 *self.moods, *self.themes]
        if titles:
            parts += [titles[a] for a in self.anchors if a in titles]
        if self.text.strip():
            parts.append(self.text.strip())
        return ", ".join(dict.fromkeys(p for p in parts if p))

    def describe(self, titles: dict[str, str] | None = None) -> str:
        """One line for people: 'understood: genres Animation, Children; excluding Horror; mood: light'."""
        titles = titles or {}
        parts = []
        if self.anchors:
            parts.append("like " + ", ".join(titles.get(a, a) for a in self.anchors))
        for item_id, others in self.alternatives.items():
            if item_id in self.anchors or item_id in self.exclude_items:
                parts.append(f"{titles.get(item_id, item_id)}: or did you mean {' or '.join(others)}?")
        if self.genres:
            parts.append("genres " + ", ".join(self.genres))
        if self.audience:
            parts.append(f"for {self.audience}")
        if self.year_min is not None or self.year_max is not None:
            if self.year_min is not None and self.year_max is not None:
                parts.append(f"from {self.year_min} to {self.year_max}")
            elif self.year_min is not None:
                parts.append(f"from {self.year_min} on")
            else:
                parts.append(f"up to {self.year_max}")
        excluded = [*self.exclude_genres, *(titles.get(i, i) for i in self.exclude_items)]
        if excluded:
            parts.append("excluding " + ", ".join(excluded))
        if self.era:
            parts.append(self.era)
        if self.moods:
            parts.append("mood: " + ", ".join(self.moods))
        if self.themes:
            parts.append("themes: " + ", ".join(self.themes))
        if self.text.strip():
            parts.append(f'about "{self.text.strip()}"')
        for title in self.unresolved:
            hint = self.suggestions.get(title)
            parts.append(f"no title matches {title!r}" + (f" (did you mean {' or '.join(hint)}?)" if hint else ""))
        return "understood: " + ("; ".join(parts) if parts else "nothing specific")

    def refine(self, follow_up: Intent, shown_years: list[int] | None = None) -> Intent:
        """This intent with a follow-up's changes applied ("no, older" keeps the rest).

        ``shown_years``: release years of the list shown last; "older"/"newer" become a year bound
        below/above their median.
        """
        merged = self.model_copy(deep=True)
        merged.anchors = list(dict.fromkeys([*follow_up.anchors, *self.anchors]))
        merged.exclude_items = list(dict.fromkeys([*self.exclude_items, *follow_up.exclude_items]))
        merged.exclude_genres = list(dict.fromkeys([*self.exclude_genres, *follow_up.exclude_genres]))
        merged.genres = [g for g in (follow_up.genres or self.genres) if g not in merged.exclude_genres]
        merged.audience = follow_up.audience or self.audience
        if follow_up.year_min is not None or follow_up.year_max is not None:
            merged.year_min, merged.year_max = follow_up.year_min, follow_up.year_max
        merged.era = None
        if follow_up.era and shown_years:
            pivot = sorted(shown_years)[len(shown_years) // 2]
            if follow_up.era == "older":
                merged.year_max, merged.year_min = pivot - 1, None if (self.year_min or 0) >= pivot else self.year_min
            else:
                merged.year_min, merged.year_max = pivot + 1, None if (self.year_max or 9999) <= pivot else self.year_max
        elif follow_up.era:
            merged.era = follow_up.era
        merged.moods = follow_up.moods or self.moods
        merged.themes = list(dict.fromkeys([*self.themes, *follow_up.themes]))
        merged.text = follow_up.text or self.text
        merged.unresolved, merged.suggestions = follow_up.unresolved, follow_up.suggestions
        merged.alternatives = {**self.alternatives, **follow_up.alternatives}
        merged.source, merged.error = follow_up.source, follow_up.error
        return merged
