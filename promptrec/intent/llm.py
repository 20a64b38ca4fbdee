"""The model reads a request into an :class:`Intent`: schema-constrained output, cached, validated;
titles resolved against the catalog; the rule parser answers when the model cannot."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from ..data import Catalog
from ..llm import LLMClient
from ..prompts import as_data, load_prompt
from .model import Intent
from .rules import FILLER, GENRE_WORDS, MOOD_WORDS, NEGATION, RuleIntentParser, merge
from .titles import TitleResolver

YEAR_RANGE = (1870, 2035)


class IntentReply(BaseModel):
    """The model's reading of a request (titles as written; resolved afterwards)."""

    like_titles: list[str] = Field(default_factory=list, max_length=3)
    exclude_titles: list[str] = Field(default_factory=list, max_length=5)
    genres: list[str] = Field(default_factory=list, max_length=4)
    exclude_genres: list[str] = Field(default_factory=list, max_length=5)
    year_min: int | None = Field(None, ge=YEAR_RANGE[0], le=YEAR_RANGE[1])
    year_max: int | None = Field(None, ge=YEAR_RANGE[0], le=YEAR_RANGE[1])
    audience: Literal["kids", "family", "adults"] | None = None
    era: Literal["older", "newer"] | None = None
    moods: list[str] = Field(default_factory=list, max_length=3)
    themes: list[str] = Field(default_factory=list, max_length=3)
    text: str = Field("", max_length=160)


def intent_schema(genres: list[str]) -> dict:
    """The grammar's schema: genres limited to the catalog's (no genre fields when it has none)."""
    text = lambda n, items: {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": n}, "maxItems": items}  # noqa: E731
    year = {"anyOf": [{"type": "integer", "minimum": YEAR_RANGE[0], "maximum": YEAR_RANGE[1]}, {"type": "null"}]}
    properties: dict = {
        "like_titles": text(80, 3),
        "exclude_titles": text(80, 5),
        "year_min": year,
        "year_max": year,
        "audience": {"anyOf": [{"type": "string", "enum": ["kids", "family", "adults"]}, {"type": "null"}]},
        "era": {"anyOf": [{"type": "string", "enum": ["older", "newer"]}, {"type": "null"}]},
        "moods": text(24, 3),
        "themes": text(40, 3),
        "text": {"type": "string", "maxLength": 160},
    }
    if genres:
        genre_list = {"type": "array", "items": {"type": "string", "enum": list(genres)}, "maxItems": 4}
        properties["genres"] = genre_list
        properties["exclude_genres"] = {**genre_list, "maxItems": 5}
    return {"type": "object", "properties": properties, "required": list(properties)}


AUDIENCE_WORDS = {"kids": ("kid", "kids", "child", "children", "childrens", "toddler", "toddlers", "little ones"),
                  "family": ("family", "families", "everyone", "all ages"),
                  "adults": ("adult", "adults", "grown", "mature")}
ERA_WORDS = ("old", "older", "new", "newer", "recent", "modern", "classic", "classics", "earlier", "latest")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _mentions(norm: str, phrase: str) -> bool:
    return f" {' '.join(re.findall(r'[a-z0-9]+', phrase.lower()))} " in norm


def _significant(text: str) -> set[str]:
    return {w for w in _words(text) if len(w) >= 3 and w not in FILLER and not w.isdigit()}


def ground(intent: Intent, request: str, resolver: TitleResolver, rules: Intent | None = None) -> Intent:
    """The model's reading, kept only where the request's own words support it.

    Small models invent genres, years and titles (SmolLM2 read "a dark horror film" as an adventure
    for kids from 1999-2022) and get polarity wrong (Protocol C: it excluded genres the request
    asked for); each part is kept only when the request names it (a genre or one of its keywords —
    after a negation for an excluded genre, not after one for a wanted genre —, a year or decade, an
    audience word, a word of the title, a word of the mood or theme). What is dropped is counted in
    ``ungrounded``.
    """
    norm = " " + " ".join(re.findall(r"[a-z0-9]+", request.lower())) + " "
    words = _words(request)
    dropped = 0

    def genre_keys(genre: str) -> list[str]:
        keys = [k for k, v in GENRE_WORDS.items() if genre.lower() in v.lower().split("|")]
        return [" ".join(re.findall(r"[a-z0-9]+", genre.lower())), *keys]

    def genre_named(genre: str) -> bool:
        return any(_mentions(norm, k) for k in genre_keys(genre))

    def genre_refused(genre: str) -> bool:  # named after a negation: "no horror", "nothing too scary or violent"
        return any(re.search(rf"\b{NEGATION}\s+(?:\w+\s+){{0,3}}{re.escape(k)}\b", norm) for k in genre_keys(genre))

    def keep(values: list, test) -> list:
        nonlocal dropped
        kept = [v for v in values if test(v)]
        dropped += len(values) - len(kept)
        return kept

    intent.genres = keep(intent.genres, genre_named)
    intent.genres = keep(intent.genres, lambda g: not genre_refused(g))
    intent.exclude_genres = keep(intent.exclude_genres, genre_refused)  # a genre merely named is wanted, not refused
    title_words = lambda item_id: _significant(re.sub(r"\(\d{4}\)", "", resolver.title(item_id)))  # noqa: E731
    intent.anchors = keep(intent.anchors, lambda i: bool(title_words(i) & words))
    intent.exclude_items = keep(intent.exclude_items, lambda i: bool(title_words(i) & words))
    intent.unresolved = keep(list(dict.fromkeys(intent.unresolved)), lambda t: _significant(t) <= words and bool(_significant(t)))
    intent.suggestions = {t: s for t, s in intent.suggestions.items() if t in intent.unresolved}
    stated = {int(n) for n in re.findall(r"\b(?:1[89]|20)\d\d\b", request)}
    bounds = [b for b in (intent.year_min, intent.year_max) if b is not None]
    ruled = rules is not None and (rules.year_min is not None or rules.year_max is not None)
    if bounds and (ruled or not all(any(abs(b - n) <= 1 for n in stated) for b in bounds)):
        intent.year_min = intent.year_max = None  # the rules read decades and 'before 1990' exactly
        dropped += 1
    if intent.audience and not any(_mentions(norm, w) for w in AUDIENCE_WORDS[intent.audience]):
        intent.audience = None
        dropped += 1
    if intent.era and not any(_mentions(norm, w) for w in ERA_WORDS):
        intent.era = None
        dropped += 1
    mood_keys = {v: [k for k, m in MOOD_WORDS.items() if m == v] for v in set(MOOD_WORDS.values())}
    intent.moods = keep(intent.moods, lambda m: _mentions(norm, m) or any(_mentions(norm, k) for k in mood_keys.get(m, ())))
    intent.themes = keep(intent.themes, lambda t: bool({w for w in _words(t) if len(w) >= 4} & words))
    text_words = [w for w in re.findall(r"[A-Za-z0-9'-]+", intent.text) if w.lower() in words and w.lower() not in FILLER]
    if len(text_words) < len(intent.text.split()):
        dropped += 1
    intent.text = " ".join(text_words)
    intent.ungrounded = dropped
    return intent


class IntentParser:
    """Free text -> :class:`Intent`, by the model when there is one, else (or on failure) by rules.

    Explicit exclusions the rules find are always kept, so a misread never shows what the person
    refused. The reply is cached by the client like every model reply.
    """

    template_name = "intent"

    def __init__(self, catalog: Catalog, client: LLMClient | None = None, model_reads: str = "always") -> None:
        self.catalog = catalog
        self.client = client if model_reads != "never" else None
        self.model_reads = model_reads
        self.resolver = TitleResolver(catalog)
        self.rules = RuleIntentParser(catalog, self.resolver)

    def needs_model(self, rules: Intent) -> bool:
        """Whether the model should read a request the rules read as ``rules``: always with
        ``model_reads='always'``; with ``'leftover'`` only when the rules left words unread
        (``rules.text``): the model's reading is kept only where the request's words support it and
        is merged with the rules', so a request the rules read whole gains nothing from it."""
        if self.client is None:
            return False
        return self.model_reads == "always" or bool(rules.text.strip())

    def parse(self, text: str) -> Intent:
        rules = self.rules.parse(text)
        if self.client is None or not text.strip():
            return rules
        template = load_prompt(self.template_name)
        genres = sorted(self.rules.vocabulary.values())
        result = self.client.generate(
            template, IntentReply, {"request": as_data(text, limit=400), "genres": ", ".join(genres) or "(none)"},
            schema=intent_schema(genres), max_tokens=400,
        )
        if result.value is None:
            rules.error = result.error or "the model gave no reading"
            return rules
        return merge(ground(self._from_reply(result.value, text), text, self.resolver, rules), rules)

    def _from_reply(self, reply: IntentReply, text: str) -> Intent:
        vocab = self.rules.vocabulary
        intent = Intent(source="llm")
        intent.genres = list(dict.fromkeys(vocab[g.lower()] for g in reply.genres if g.lower() in vocab))
        intent.exclude_genres = list(dict.fromkeys(vocab[g.lower()] for g in reply.exclude_genres if g.lower() in vocab))
        intent.genres = [g for g in intent.genres if g not in intent.exclude_genres]
        for titles, target in ((reply.like_titles, intent.anchors), (reply.exclude_titles, intent.exclude_items)):
            for title in titles:
                found = self.resolver.resolve(title)
                if found.item_id and found.item_id not in target:
                    target.append(found.item_id)
                    if found.ambiguous:
                        intent.alternatives[found.item_id] = [self.resolver.title(i) for i in found.alternatives]
                elif not found.item_id and title.strip():
                    intent.unresolved.append(title.strip())
                    if found.alternatives:
                        intent.suggestions[title.strip()] = [self.resolver.title(i) for i in found.alternatives]
        intent.exclude_items = [i for i in intent.exclude_items if i not in intent.anchors]
        low, high = reply.year_min, reply.year_max
        if low is not None and high is not None and low > high:
            low, high = high, low
        intent.year_min, intent.year_max = low, high
        intent.audience, intent.era = reply.audience, reply.era if low is None and high is None else None
        if intent.audience and "children" not in vocab:
            intent.audience = None
        intent.moods = [m.strip().lower() for m in reply.moods if m.strip()][:3]
        intent.themes = [t.strip() for t in reply.themes if t.strip()][:3]
        intent.text = " ".join(reply.text.split())
        return intent
