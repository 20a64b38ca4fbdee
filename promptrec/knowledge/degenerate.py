"""A deterministic check that rejects degenerate model features before they are stored as features.

Small models often fill the :class:`~promptrec.types.ItemFeatures` schema with junk that validates:
the same theme five times, the mood repeated as the audience, a description that loops on one phrase,
or wording copied from the prompt's own instructions. :func:`degenerate_features` names the first
such defect (a short, stable reason string: the job reports count records by it) or returns None.

The rules (all on case-folded text with punctuation removed and whitespace collapsed):

- ``repeated themes``: two themes are equal.
- ``repeated fields``: two of mood, audience and description are equal, a theme equals the description,
  or the mood and the audience both only repeat a theme (a mood that repeats one theme, e.g. themes
  "war, epic" and mood "epic", is allowed: capable models do that on good features).
- ``looping description``: the description repeats a word sequence (three words or more occurring
  three times or more), or fewer than half of its words (at 12 words or more) are distinct.
- ``copied from the prompt``: a field or a theme is (or contains a run of six words of) the prompt's
  instruction text, or is one of the schema's field names; or it copies the item instead of describing
  it: a field is the item's title (with or without its year), the description is nothing but a piece of
  the item's text, or the mood or audience repeats four words in a row of the item's text (its tag list).
- ``empty field``: a theme, the mood, the audience or the description has no letters.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from ..types import ItemFeatures

DEGENERATE = "degenerate: "  # how a rejected record's error starts: "degenerate: <reason>"
REASONS = ("empty field", "repeated themes", "repeated fields", "looping description", "copied from the prompt")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
COPY_RUN = 6  # words in a row shared with the prompt's instructions that count as copying
ITEM_RUN = 4  # words in a row of the item's text that a mood or audience may not repeat
FIELD_NAMES = {"themes", "theme", "mood", "audience", "description"}
_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
LOOP_NGRAM = 3  # a word sequence this long ...
LOOP_TIMES = 3  # ... occurring this often is a loop
DISTINCT_MIN_WORDS = 12
DISTINCT_SHARE = 0.5


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def norm(text: str) -> str:
    return " ".join(words(text))


def _ngrams(tokens: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def looping(text: str) -> bool:
    """True when ``text`` repeats itself: a ``LOOP_NGRAM``-word sequence ``LOOP_TIMES`` times or more, or
    fewer than ``DISTINCT_SHARE`` of its words distinct once it has ``DISTINCT_MIN_WORDS`` words."""
    tokens = words(text)
    if any(n >= LOOP_TIMES for n in Counter(_ngrams(tokens, LOOP_NGRAM)).values()):
        return True
    return len(tokens) >= DISTINCT_MIN_WORDS and len(set(tokens)) < DISTINCT_SHARE * len(tokens)


def _copies(text: str, prompt_runs: set[tuple[str, ...]], prompt_norm: str) -> bool:
    value = norm(text)
    if not value:
        return False
    if len(value.split()) >= 3 and value in prompt_norm:
        return True
    return any(run in prompt_runs for run in _ngrams(value.split(), COPY_RUN))


class FeatureCheck:
    """:func:`degenerate_features` with the prompt's instruction text prepared once.

    Args:
        instructions: The prompt's own wording (system text, user text without the data); a field that
            copies it is rejected. Empty: that rule is off.
    """

    def __init__(self, instructions: str = "") -> None:
        tokens = words(instructions)
        self.prompt_norm = " ".join(tokens)
        self.prompt_runs = set(_ngrams(tokens, COPY_RUN))

    def __call__(self, features: ItemFeatures, item_text: str = "", title: str = "") -> str | None:
        themes = [norm(t) for t in features.themes]
        mood, audience, description = norm(features.mood), norm(features.audience), norm(features.description)
        if not all(themes) or not mood or not audience or not description:
            return "empty field"
        if len(set(themes)) < len(themes):
            return "repeated themes"
        if len({mood, audience, description}) < 3 or description in themes or (mood in themes and audience in themes):
            return "repeated fields"
        if looping(features.description):
            return "looping description"
        fields = [*features.themes, features.mood, features.audience, features.description]
        if self.prompt_norm and any(_copies(f, self.prompt_runs, self.prompt_norm) for f in fields):
            return "copied from the prompt"
        if item_text and self._copies_item(features, item_text, title):
            return "copied from the prompt"
        return None

    @staticmethod
    def _copies_item(features: ItemFeatures, item_text: str, title: str) -> bool:
        text = norm(item_text)
        names = {norm(title), norm(_YEAR.sub("", title))} - {""} if title else set()
        values = [norm(v) for v in (*features.themes, features.mood, features.audience, features.description)]
        if names & set(values) or FIELD_NAMES & set(values):
            return True
        description = norm(features.description)
        if description and description in text:
            return True
        runs = set(_ngrams(text.split(), ITEM_RUN))
        return any(run in runs for field in (features.mood, features.audience) for run in _ngrams(words(field), ITEM_RUN))


def prompt_instructions(template) -> str:
    """A template's own wording (system and user parts, ``$placeholders`` removed)."""
    return re.sub(r"\$\{?\w+\}?", " ", f"{template.system}\n{template.user}")


def degenerate_features(features: ItemFeatures, item_text: str = "", instructions: str = "",
                        title: str = "") -> str | None:
    """Why ``features`` are degenerate (one of :data:`REASONS`), or None when they pass.

    Args:
        item_text: The item's own text as the model saw it (features that only copy it are rejected).
        title: The item's title (a field that is just the title is rejected).
        instructions: The prompt's instruction text (see :func:`prompt_instructions`).
    """
    return FeatureCheck(instructions)(features, item_text, title)


__all__ = ["DEGENERATE", "REASONS", "FeatureCheck", "degenerate_features", "looping", "prompt_instructions"]
