"""A quality gate for model-written text before it is shown: explanations and profiles.

Model text is untrusted: a small model echoes prompt ids ("C12: ..."), prompt wording ("the related
history item"), repeats itself, stops mid-list, names a title it does not cite or one that is not in
the catalog at all, uses offensive words, or states genres the catalog does not confirm.
:func:`reason_problem` and :func:`profile_problem` say what is wrong with a text (None when it may
be shown); callers replace a rejected text with a deterministic one, count it and say so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

# ids the prompts give items (C1.., H1..), alone or in "C12:" / "[H3]" form
_INTERNAL_ID = re.compile(r"(?<![A-Za-z0-9])[CHch]\s?\d{1,3}(?![A-Za-z0-9])")
# wording from the prompts and their scaffolding, never natural in an explanation to the user
PROMPT_WORDING = (
    "history item", "related history", "related to h", "candidate", "the customer", "taste profile",
    "between tags", "json", "\"id\"", "\"reason\"", "\"because\"", "picks", "the request", "as data",
    "instruction", "system prompt", "ignore all", "ignore previous", "assistant:", "system:", "user:",
    "recommended item", "enjoyed item", "item they enjoyed", "confirmed fact", "shared fact", "these facts",
    "the catalog", "the data", "suggested title", "watched title", "shared genre", "shared tag", "shared theme",
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


_ALTERNATE = re.compile(r"\s*\((?:a\.k\.a\.\s*)?[^()]+\)\s*$", re.I)


def title_core(title: str) -> str:
    """A title as it would be written in prose: no year, no alternate title in parentheses, a trailing
    ", The" moved to the front ("Postman, The (Postino, Il) (1994)" -> "The Postman")."""
    core = _YEAR.sub("", title).strip()
    while (bare := _ALTERNATE.sub("", core).strip()) != core and len(bare) >= 2:
        core = bare
    match = _ARTICLE_AT_END.match(core)
    return f"{match['article']} {match['core']}" if match else core


def _mentions(text: str, title: str) -> bool:
    core = title_core(title)
    bare = re.sub(r"^(?:The|A|An) ", "", core)
    names = {n for n in (core, bare) if len(n) >= 4 and _WORD.search(n)}
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, re.I if len(n) >= 8 else 0) for n in names)


def _repetitive(words: list[str], span: int = 3) -> bool:
    """A word three times in a row, a run of ``span`` words said twice, or one content word making up over a
    third of them. A one-sentence reason uses ``span`` 3; a profile summary of several sentences 6, since
    "They have a ..." may open two of its sentences but a loop repeats whole clauses."""
    lower = [w.lower() for w in words]
    if any(a == b == c for a, b, c in zip(lower, lower[1:], lower[2:])):
        return True
    runs = Counter(tuple(lower[i:i + span]) for i in range(len(lower) - span + 1))
    if runs and runs.most_common(1)[0][1] > 1:
        return True
    content = [w for w in lower if len(w) > 3]
    return len(content) >= 6 and Counter(content).most_common(1)[0][1] > len(content) // 3


def reason_problem(text: str, *, allowed_titles: Iterable[str] = (), other_titles: Iterable[str] = (),
                   must_name: Sequence[str] = (), confirmed: Iterable[str] | None = None,
                   titles: TitleIndex | None = None, vocabulary: Iterable[str] = ()) -> str | None:
    """Why ``text`` may not be shown as a model explanation, or None when it may.

    Args:
        text: The model's text (whitespace already normalised).
        allowed_titles: Titles the text may name (the item explained, the items it cites).
        other_titles: Titles the text must not name: items shown to the model that the text does
            not cite (so naming them would cite the wrong item).
        must_name: When given, the text must name at least one of these titles (a reason about
            neither the item nor the item it cites says nothing checkable).
        confirmed: When given, the genres the catalog or features confirm: a text stating any
            other genre (:func:`stated_genres`) is rejected.
        titles: The catalog's titles: a capitalised name in the text that is neither one of them
            nor made of ``vocabulary`` words (genres, tags, themes of the items) is rejected.
        vocabulary: Words the catalog text of the items involved contains (tags, people, themes).
    """
    allowed_titles = list(allowed_titles)
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
    names = {n for title in allowed_titles for n in (title_core(title), _YEAR.sub("", title).strip()) if len(n) >= 2}
    for name in sorted(names, key=len, reverse=True):  # "Part III" before "Part II"; "Toy Story 2" before "Toy Story"
        rest = re.sub(re.escape(name), " ", rest, flags=re.I)
    named = next((t for t in other_titles if _mentions(rest, t)), None)
    if named:
        return f"names {title_core(named)!r}, which it does not cite"
    vocabulary = _vocabulary(vocabulary)
    word = offensive(rest, vocabulary)
    if word:
        return f"contains an offensive word ({word!r})"
    if must_name and not any(_mentions(text, t) for t in must_name):
        return "does not name the title it cites" if len(must_name) == 1 else "names neither the item nor the item it cites"
    if confirmed is not None:
        unconfirmed = sorted(stated_genres(rest) - {g.lower() for g in confirmed})
        if unconfirmed:
            return f"states a genre the catalog does not confirm ({', '.join(unconfirmed)})"
    if titles is not None:
        unknown = titles.unknown_name(rest, vocabulary)
        if unknown:
            return f"names {unknown!r}, which is not in the catalog"
    return None


# ----- offensive words -----
@cache
def _offensive_list() -> tuple[frozenset[str], tuple[str, ...]]:
    path = Path(__file__).parent / "wordlists" / "offensive.txt"
    entries = [line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines()]
    entries = [e for e in entries if e and not e.startswith("#")]
    return frozenset(e for e in entries if not e.endswith("*")), tuple(e[:-1] for e in entries if e.endswith("*"))


def offensive(text: str, allowed: Iterable[str] = ()) -> str | None:
    """The first word of ``text`` on the package's offensive word list (``wordlists/offensive.txt``),
    unless it is in ``allowed`` (the catalog's own words for the items involved); None if none."""
    exact, prefixes = _offensive_list()
    allowed = {a.lower() for a in allowed}
    for word in _WORD.findall(text):
        lower = word.lower()
        if lower in allowed:
            continue
        if lower in exact or lower.startswith(prefixes):
            return word
    return None


# ----- genres stated in text -----
GENRE_WORDS = {
    "action": "action", "adventure": "adventure", "adventures": "adventure", "animation": "animation",
    "animated": "animation", "cartoon": "animation", "cartoons": "animation", "children": "children",
    "children's": "children", "kids": "children", "comedy": "comedy", "comedies": "comedy", "comedic": "comedy",
    "crime": "crime", "documentary": "documentary", "documentaries": "documentary", "drama": "drama",
    "dramas": "drama", "fantasy": "fantasy", "fantasies": "fantasy", "noir": "film-noir", "film-noir": "film-noir",
    "horror": "horror", "musical": "musical", "musicals": "musical", "mystery": "mystery", "mysteries": "mystery",
    "romance": "romance", "romances": "romance", "romantic": "romance", "sci-fi": "sci-fi",
    "science fiction": "sci-fi", "science-fiction": "sci-fi", "thriller": "thriller", "thrillers": "thriller",
    "war": "war", "western": "western", "westerns": "western",
}
_GENRE_RE = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, GENRE_WORDS), key=len, reverse=True))
                       + r")(?![\w-])", re.I)


def stated_genres(text: str) -> set[str]:
    """The genres ``text`` states, as catalog genre names in lower case ("animated" -> "animation")."""
    return {GENRE_WORDS[m.lower()] for m in _GENRE_RE.findall(text)}


def genre_set(values: Iterable[str]) -> set[str]:
    """Catalog genre names (or any text naming genres) as the lower-case names :func:`stated_genres` uses."""
    out: set[str] = set()
    for value in values:
        out |= stated_genres(value)
        out |= {v.strip().lower() for v in value.split(",") if v.strip().lower() in GENRE_WORDS.values()}
    return out


# ----- names that must be catalog titles -----
_CAP = r"(?:[A-Z][\w'’.-]*|\d+)"
_NAME_RUN = re.compile(rf"{_CAP}(?:\s+(?:(?:of|the|and|in|a|an|on|to|for|at|with|from|de|la|le)\s+)*{_CAP})+")
_SENTENCE_END = re.compile(r"(?:(?<=\w{4}\.)|(?<=\w{3}['’\"]\.)|(?<=\w{3}\.['’\"]))\s+")  # "Heat. They", "Creatures'. They"
_CONNECTORS = {"of", "the", "and", "in", "a", "an", "on", "to", "for", "at", "with", "from", "de", "la", "le"}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _vocabulary(words: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for phrase in words:
        out |= set(_norm(phrase).split())
    return out


class TitleIndex:
    """The catalog's titles as prose writes them, to tell a real title from an invented one."""

    def __init__(self, titles: Iterable[str]) -> None:
        names: set[str] = set()
        for title in titles:
            core = title_core(title)
            for name in (core, re.sub(r"^(?:The|A|An) ", "", core), core.split(":")[0]):
                if name.strip():
                    names.add(_norm(name))
        self.names = names

    def known(self, name: str) -> bool:
        return _norm(name) in self.names

    def unknown_name(self, text: str, vocabulary: Iterable[str] = ()) -> str | None:
        """The first capitalised multi-word name in ``text`` that is not a catalog title and not
        made of ``vocabulary`` words, genre words or connectors (a sentence's first word may be an
        ordinary word: "Like Heat" is checked as "Heat" too). None when every name checks out."""
        vocab = _vocabulary(vocabulary) | _vocabulary(GENRE_WORDS) | _CONNECTORS
        # a run stops at a sentence's end ("Hayao Miyazaki. They"): a word of four or more letters before a
        # full stop; "Mr. Smith", "J. R. R. Tolkien" and "St. Elmo" stay one run
        runs = [part for match in _NAME_RUN.finditer(text) for part in _SENTENCE_END.split(match.group(0))]
        for run in runs:
            run = run.rstrip(".'’\"")
            words = run.split()
            if not words:
                continue
            if sum(w[0].isupper() for w in words) < 2:  # "Profiled from 6": one capitalised word is no name
                continue
            variants = [" ".join(words[i:]) for i in range(len(words)) if len(words) - i >= 2]
            if any(self.known(v) for v in variants) or any(self.known(w) for w in words[1:2] if len(words) == 2):
                continue
            if all(w in vocab or w.isdigit() for w in _norm(" ".join(words[1:])).split()) or all(
                    w in vocab or w.isdigit() for w in _norm(run).split()):
                continue
            return run
        return None


# ----- profiles -----
# The profile rules' version: a profile refused under other rules is read again (from the reply cache) by the
# product instead of serving its stored evidence fallback. 2: overlap of likes and recent interests allowed,
# names stop at a sentence end, a summary loops at a repeated six-word run (2026-11-29). 3: the slips a
# small model makes in the lists (a phrase twice, one both liked and disliked, a rating "2/5" as a phrase)
# and a summary that starts looping are repaired by removal (:func:`repair_profile`) before the checks.
# 4: a name also stops at a quoted title's end ("'Fierce Creatures'. They").
PROFILE_GATE = "4"
_RATING_PHRASE = re.compile(r"^\s*\d{1,2}(?:\.\d+)?\s*(?:/\s*\d{1,2}|stars?|points?)\s*$", re.I)  # "2/5", "4 stars"


def repair_profile(lists: Sequence[Sequence[str]], summary: str) -> tuple[list[list[str]], str, list[str]]:
    """Removes what a small model's profile gets wrong without being wrong everywhere, and says what.

    Only ever removes: a phrase that is a rating ("2/5"), a phrase a second time in one list, a phrase both
    liked and disliked (from both lists: the model could not tell), and the summary from the first sentence
    that repeats a six-word run said before it. Returns ``(lists, summary, notes)``; :func:`profile_problem`
    then judges what is left as it would any profile.

    Args:
        lists: Likes, then dislikes, then recent interests.
        summary: The summary sentence(s).
    """
    notes: list[str] = []
    kept: list[list[str]] = []
    for group in lists:
        seen: set[str] = set()
        out = []
        for phrase in group:
            key = _norm(phrase)
            if _RATING_PHRASE.match(phrase):
                notes.append(f"dropped the rating {phrase.strip()!r} given as a phrase")
            elif key in seen:
                notes.append(f"dropped {phrase.strip()!r} said twice in one list")
            else:
                seen.add(key)
                out.append(phrase)
        kept.append(out)
    if len(kept) > 1:
        both = {_norm(p) for p in kept[0]} & {_norm(p) for p in kept[1]}
        if both:
            notes += [f"dropped {p!r} (liked and disliked)" for p in sorted(both)]
            kept[0] = [p for p in kept[0] if _norm(p) not in both]
            kept[1] = [p for p in kept[1] if _norm(p) not in both]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", summary.strip()) if s]
    for end in range(1, len(sentences) + 1):
        if _repetitive(_WORD.findall(" ".join(sentences[:end])), span=6):
            summary = " ".join(sentences[:end - 1])
            notes.append(f"cut the summary where it starts repeating itself ({len(sentences) - end + 1} of "
                         f"{len(sentences)} sentences dropped)")
            break
    return kept, summary, notes


def profile_problem(lists: Sequence[Sequence[str]], summary: str, *, confirmed: Iterable[str],
                    titles: TitleIndex | None = None, vocabulary: Iterable[str] = ()) -> str | None:
    """Why a model-written profile may not be shown, or None when it may.

    Args:
        lists: Its phrase lists: likes, then dislikes, then recent interests (any may be missing). A
            phrase twice in one list is a loop; a phrase both liked and disliked a contradiction; a like
            that is also a recent interest is what a steady taste looks like, and passes.
        summary: Its summary sentence(s).
        confirmed: The genres the user's history has (catalog genres, features): any other genre
            stated is rejected.
        titles: The catalog's titles; names that are neither titles nor ``vocabulary`` are rejected.
        vocabulary: Words of the history items' catalog text (tags, people, themes).
    """
    vocab = _vocabulary(vocabulary)
    confirmed = {g.lower() for g in confirmed}
    phrases = [p for group in lists for p in group]
    texts = [*phrases, summary]
    for text in texts:
        if _CONTROL.search(text):
            return "contains control characters"
        if _INTERNAL_ID.search(text):
            return "contains an internal item id"
        if _MARKUP.search(text):
            return "contains markup or a link"
        wording = next((w for w in PROMPT_WORDING if w in text.lower()), None)
        if wording:
            return f"repeats prompt wording ({wording!r})"
        word = offensive(text, vocab)
        if word:
            return f"contains an offensive word ({word!r})"
    groups = [[_norm(p) for p in group if _norm(p)] for group in lists]
    if any(len(set(group)) < len(group) for group in groups):
        return "repeats itself (the same phrase twice in one list)"
    both = sorted(set(groups[0]) & set(groups[1])) if len(groups) > 1 else []
    if both:
        return f"contradicts itself ({both[0]!r} liked and disliked)"
    normed = [p for group in groups for p in group]
    starts = Counter(" ".join(p.split()[:2]) for p in normed if len(p.split()) >= 3)
    if starts and starts.most_common(1)[0][1] >= 3:
        return f"repeats itself ({starts.most_common(1)[0][0]!r} starts three phrases)"
    words = _WORD.findall(summary)
    if summary.strip() and (len(words) < 2 or _repetitive(words, span=6)):
        return "a degenerate summary"
    unconfirmed = sorted(set().union(*(stated_genres(t) for t in texts)) - confirmed)
    if unconfirmed:
        return f"states a genre the history does not have ({', '.join(unconfirmed)})"
    if titles is not None:
        for text in texts:
            unknown = titles.unknown_name(text, vocab)
            if unknown:
                return f"names {unknown!r}, which is not in the catalog"
    return None
