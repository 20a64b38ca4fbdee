"""A quality gate for model-written text before it is shown as a model explanation.

Model text is untrusted: a small model echoes prompt ids ("C12: ..."), prompt wording ("the related
history item"), repeats itself, stops mid-list, or names a title it does not cite. :func:`reason_problem`
says what is wrong with a text (None when it may be shown); callers replace a rejected text with
a deterministic one and count it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# ids the prompts give items (C1.., H1..), alone or in "C12:" / "[H3]" form
_INTERNAL_ID = re.compile(r"(?<![A-Za-z0-9])[CHch]\s?\d{1,3}(?![A-Za-z0-9])")
# wording from the prompts and their scaffolding, never natural in an explanation to the user
PROMPT_WORDING = (
    "history item", "related history", "related to h", "candidate", "the customer", "taste profile",
    "between tags", "json", "\"id\"", "\"reason\"", "\"because\"", "picks", "the request", "as data",
    "instruction", "system prompt", "ignore all", "ignore previous", "assistant:", "system:", "user:",
)
_MARKUP = re.compile(r"[<>\[\]{}`|\\]|https?://|www\.", re.I)
_LIST_START = re.compile(r"^\s*(?:[-*•·]|\d+[.)]|\(\w\))\s")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_YEAR = re.compile(r"\s*\(\d{4}(?:[-–]\d{0,4})?\)\s*$")
_ARTICLE_AT_END = re.compile(r"^(?P<core>.+), (?P<article>The|A|An|Les|La|Le|Il|El|Der|Die|Das)$", re.I)

MIN_WORDS = 5
MIN_LETTERS = 15
MIN_PLAIN_WORDS = 2  # a sentence has ordinary lower-case words; a bare title ("The Return of the King") has none
_FUNCTION_WORDS = {"a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "for", "with", "by", "from", "de", "la"}


def title_core(title: str) -> str:
    """A title as it would be written in prose: no year, a trailing ", The" moved to the front."""
    core = _YEAR.sub("", title).strip()
    match = _ARTICLE_AT_END.match(core)
    return f"{match['article']} {match['core']}" if match else core


def _mentions(text: str, title: str) -> bool:
    core = title_core(title)
    bare = re.sub(r"^(?:The|A|An) ", "", core)
    names = {n for n in (core, bare) if len(n) >= 4 and _WORD.search(n)}
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, re.I if len(n) >= 8 else 0) for n in names)


def _repetitive(words: list[str]) -> bool:
    lower = [w.lower() for w in words]
    if any(a == b == c for a, b, c in zip(lower, lower[1:], lower[2:])):
        return True
    trigrams = Counter(zip(lower, lower[1:], lower[2:]))
    if trigrams and trigrams.most_common(1)[0][1] > 1:
        return True
    content = [w for w in lower if len(w) > 3]
    return len(content) >= 6 and Counter(content).most_common(1)[0][1] > len(content) // 3


def reason_problem(text: str, *, allowed_titles: Iterable[str] = (), other_titles: Iterable[str] = ()) -> str | None:
    """Why ``text`` may not be shown as a model explanation, or None when it may.

    Args:
        text: The model's text (whitespace already normalised).
        allowed_titles: Titles the text may name (the item explained, the items it cites).
        other_titles: Titles the text must not name: items shown to the model that the text does
            not cite (so naming them would cite the wrong item).
    """
    if _CONTROL.search(text):
        return "contains control characters"
    words = _WORD.findall(text)
    if len(words) < MIN_WORDS or sum(len(w) for w in words) < MIN_LETTERS:
        return "a fragment, not a sentence"
    if sum(w[0].islower() and w not in _FUNCTION_WORDS for w in words) < MIN_PLAIN_WORDS:
        return "a fragment (a title or a name), not a sentence"
    if _LIST_START.match(text) or text.rstrip().endswith((",", ":", ";", " -", " and", " or")):
        return "a list fragment"
    if _INTERNAL_ID.search(text):
        return "contains an internal item id"
    lower = text.lower()
    wording = next((w for w in PROMPT_WORDING if w in lower), None)
    if wording:
        return f"repeats prompt wording ({wording!r})"
    if _MARKUP.search(text):
        return "contains markup or a link"
    if _repetitive(words):
        return "repeats itself"
    rest = text
    for title in allowed_titles:  # "Toy Story 2" cited must not read as "Toy Story" named
        for name in {title_core(title), _YEAR.sub("", title).strip()}:
            rest = re.sub(re.escape(name), " ", rest, flags=re.I) if len(name) >= 2 else rest
    named = next((t for t in other_titles if _mentions(rest, t)), None)
    if named:
        return f"names {title_core(named)!r}, which it does not cite"
    return None
