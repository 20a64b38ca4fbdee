"""The offline intent parser: keywords and patterns, no model. Used when no model is configured or
the model's reading failed, and as a safety net for explicit exclusions."""

from __future__ import annotations

import re

from ..data import Catalog
from .model import Intent
from .titles import TitleResolver

# keyword -> genre as MovieLens names it (mapped onto the catalog's own spelling when present)
GENRE_WORDS = {
    "action": "Action", "adventure": "Adventure", "adventures": "Adventure",
    "animated": "Animation", "animation": "Animation", "cartoon": "Animation", "cartoons": "Animation",
    "anime": "Animation", "comedy": "Comedy", "comedies": "Comedy", "crime": "Crime",
    "documentary": "Documentary", "documentaries": "Documentary", "drama": "Drama", "dramas": "Drama",
    "fantasy": "Fantasy", "noir": "Film-Noir", "film noir": "Film-Noir", "horror": "Horror",
    "musical": "Musical", "musicals": "Musical", "mystery": "Mystery", "mysteries": "Mystery",
    "romance": "Romance", "romances": "Romance", "romantic comedy": "Romance|Comedy", "rom com": "Romance|Comedy",
    "romcom": "Romance|Comedy", "sci fi": "Sci-Fi", "scifi": "Sci-Fi", "science fiction": "Sci-Fi",
    "thriller": "Thriller", "thrillers": "Thriller", "war": "War", "western": "Western", "westerns": "Western",
}
MOOD_WORDS = {
    "light": "light", "lighter": "light", "lighthearted": "light", "light hearted": "light", "feel good": "light",
    "uplifting": "uplifting", "cheerful": "light", "happy": "light", "fun": "fun",
    "dark": "dark", "darker": "dark", "gritty": "dark", "bleak": "dark",
    "scary": "scary", "scarier": "scary", "creepy": "scary", "frightening": "scary",
    "funny": "funny", "funnier": "funny", "hilarious": "funny",
    "romantic": "romantic", "sad": "sad", "moving": "moving", "emotional": "emotional",
    "tense": "tense", "suspenseful": "tense", "thrilling": "thrilling", "exciting": "exciting",
    "smart": "thought-provoking", "clever": "thought-provoking", "thought provoking": "thought-provoking",
    "cerebral": "thought-provoking", "quirky": "quirky", "weird": "quirky", "epic": "epic",
    "slow": "slow", "calm": "calm", "relaxing": "calm", "violent": "violent",
}
KIDS = ("for kids", "for children", "for small children", "for young children", "for my kids",
        "kids", "children s", "childrens", "for a child", "for toddlers")
FAMILY = ("for the family", "for the whole family", "family friendly", "family")
ADULTS = ("for adults", "grown up", "adult")
OLDER = ("older", "old", "classic", "classics", "earlier")
NEWER = ("newer", "recent", "new", "modern", "latest", "more recent")
YEAR_WORDS = {"before", "after", "since", "until", "pre", "post", "earlier", "later", "than", "decade", "century"}
NEGATION = r"(?:no|not|without|nothing|never|exclude|excluding|avoid|skip|hide|but not|except|minus)"
FILLER = {
    "a", "an", "the", "some", "something", "anything", "movie", "movies", "film", "films", "show", "me", "i",
    "want", "would", "like", "to", "watch", "please", "give", "find", "recommend", "suggest", "with", "and",
    "of", "for", "more", "but", "that", "is", "are", "in", "on", "it", "its", "one", "ones", "be", "maybe",
    "im", "mood", "looking", "good", "great", "really", "very", "bit", "little", "small", "young", "can", "you",
    "something", "stuff", "kind", "sort", "type", "or", "from", "s", "my", "so", "just", "too", "ok", "okay",
    "yes", "no", "not", "set",
}
_TIME_WORD = re.compile(r"(?:before|after|since|from|until|older|newer|earlier|later|pre|post|the \d0s|\d0s|(?:19|20)\d\d)\b", re.I)
_DECADE = re.compile(r"\b(?:the\s+)?(?:(19|20)(\d)0|(\d)0)\s*'?s\b")
_BEFORE = re.compile(r"\b(?:before|pre|earlier than|older than|until|up to)\s*-?\s*((?:19|20)\d\d)\b")
_AFTER = re.compile(r"\b(?:after|since|post|newer than|later than|from)\s*-?\s*((?:19|20)\d\d)\b")
_ANCHOR = re.compile(r"\b(?:more\s+)?(?:like|similar to|in the style of|in the vein of|along the lines of|reminiscent of|the same as|as good as)\s+"
                     r"(?P<title>[^,;]+?)(?=\s*(?:,|;|$|\bbut\b|\band\b|\bwithout\b|\bno\b|\bnot\b|\bfrom\b|\bfor\b))", re.I)
_NOT_TITLE = re.compile(rf"\b(?:{NEGATION})\s+(?P<title>[^,;]+?)(?=\s*(?:,|;|$|\bbut\b|\band\b|\bplease\b))", re.I)


def _norm(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()).strip() + " "


def _has(text: str, phrase: str) -> bool:
    return f" {phrase} " in text


def catalog_genres(catalog: Catalog) -> dict[str, str]:
    """lower-case genre -> the catalog's spelling, over every item's ``genres`` field."""
    found: dict[str, str] = {}
    for item in catalog:
        for genre in item.fields.get("genres", "").replace("|", ",").split(","):
            if genre.strip():
                found.setdefault(genre.strip().lower(), genre.strip())
    return found


class RuleIntentParser:
    """Parses requests with keyword lists and patterns.

    Args:
        catalog: Items (titles to resolve) and the genre vocabulary.
    """

    def __init__(self, catalog: Catalog, resolver: TitleResolver | None = None) -> None:
        self.catalog = catalog
        self.resolver = resolver or TitleResolver(catalog)
        self.vocabulary = catalog_genres(catalog)

    def _genre(self, name: str) -> list[str]:
        return [self.vocabulary[g.lower()] for g in name.split("|") if g.lower() in self.vocabulary]

    def _genre_hits(self, text: str) -> list[tuple[str, list[str]]]:
        """(keyword, genres) for every genre keyword in the normalised text, longest keywords first."""
        hits, taken = [], text
        keywords = {**{_norm(g).strip(): g for g in self.vocabulary.values()}, **GENRE_WORDS}  # the catalog's own names too
        for word in sorted(keywords, key=len, reverse=True):
            genres = self._genre(keywords[word])
            # a keyword for several genres ('romantic comedy') counts only when the catalog has them all
            if word and _has(taken, word) and genres and len(genres) == len(keywords[word].split("|")):
                hits.append((text.find(f" {word} "), word, genres))
                taken = taken.replace(f" {word} ", " " * (len(word) + 2))
        return [(word, genres) for _, word, genres in sorted(hits)]

    def _titles(self, pattern: re.Pattern, raw: str, intent: Intent) -> tuple[list[str], list[str]]:
        ids, spans = [], []
        for match in pattern.finditer(raw):
            title = match.group("title").strip(" .!?\"'")
            if not title or _norm(title).strip() in GENRE_WORDS or self._is_descriptor(title) or _TIME_WORD.match(title):
                continue
            found = self.resolver.resolve(title)
            spans.append(match.group(0))
            if found.item_id:
                ids.append(found.item_id)
                if found.ambiguous:
                    intent.alternatives[found.item_id] = [self.resolver.title(i) for i in found.alternatives]
            else:
                intent.unresolved.append(title)
                if found.alternatives:
                    intent.suggestions[title] = [self.resolver.title(i) for i in found.alternatives]
        return ids, spans

    def _is_descriptor(self, text: str) -> bool:
        words = _norm(text).split()
        vocab = set(GENRE_WORDS) | set(MOOD_WORDS) | FILLER | set(OLDER) | set(NEWER) | {"horror", "gore", "violence"}
        return all(w in vocab or w.endswith("s") and w[:-1] in vocab for w in words)

    def parse(self, text: str) -> Intent:
        raw = " ".join(str(text).split())
        intent = Intent(source="rules")
        norm = _norm(raw)
        # explicit titles: anchors and excluded items
        intent.anchors, anchor_spans = self._titles(_ANCHOR, raw, intent)
        excluded, exclude_spans = self._titles(_NOT_TITLE, raw, intent)
        intent.exclude_items = [i for i in excluded if i not in intent.anchors]
        rest = raw
        for span in [*anchor_spans, *exclude_spans]:
            rest = rest.replace(span, " ")
        norm_rest = _norm(rest)
        # genres, negated or wanted
        for word, genres in self._genre_hits(norm_rest):
            negated = re.search(rf"\b{NEGATION}\s+(?:\w+\s+)?{re.escape(word)}\b", norm_rest)
            target = intent.exclude_genres if negated else intent.genres
            target.extend(g for g in genres if g not in target)
        intent.genres = [g for g in intent.genres if g not in intent.exclude_genres]
        # audience
        if any(_has(norm, p) for p in ("for small children", "for young children", "for kids", "for children",
                                        "for my kids", "for toddlers", "for a child")) or _has(norm, "kids") \
                or _has(norm, "children") or _has(norm, "childrens") or _has(norm, "children s"):
            intent.audience = "kids"
        elif any(_has(norm, p) for p in FAMILY):
            intent.audience = "family"
        elif any(_has(norm, p) for p in ADULTS):
            intent.audience = "adults"
        if intent.audience == "kids":
            intent.genres = [g for g in intent.genres if g.lower() != "children"]
        unfilterable = intent.audience if intent.audience and "children" not in self.vocabulary else None
        # years
        if match := _DECADE.search(raw.lower()):
            century, decade, short = match.groups()
            start = int(century + decade + "0") if century else (1900 if int(short) >= 3 else 2000) + int(short) * 10
            intent.year_min, intent.year_max = start, start + 9
        lowered = raw.lower()
        if match := _BEFORE.search(lowered):
            if re.search(rf"\b{NEGATION}\s*$", lowered[: match.start()]):  # "nothing before 1993"
                intent.year_min = int(match.group(1))
            else:
                intent.year_max = int(match.group(1)) - 1
        if match := _AFTER.search(lowered):
            if re.search(rf"\b{NEGATION}\s*$", lowered[: match.start()]):  # "not after 2000"
                intent.year_max = int(match.group(1))
            else:
                intent.year_min = int(match.group(1)) + (0 if "from" in match.group(0) or "since" in match.group(0) else 1)
        if intent.year_min is None and intent.year_max is None:
            if any(_has(norm_rest, w) for w in OLDER):
                intent.era = "older"
            elif any(_has(norm_rest, w) for w in NEWER):
                intent.era = "newer"
        # moods
        for word in sorted(MOOD_WORDS, key=len, reverse=True):
            if _has(norm_rest, word) and MOOD_WORDS[word] not in intent.moods:
                negated = re.search(rf"\b{NEGATION}\s+(?:too\s+)?{re.escape(word)}\b", norm_rest)
                if not negated:
                    intent.moods.append(MOOD_WORDS[word])
        # what remains
        used = set(GENRE_WORDS) | set(MOOD_WORDS) | set(OLDER) | set(NEWER) | FILLER | {"kids", "children", "childrens", "family"}
        remaining = _norm(rest)
        for phrase in sorted((p for p in used if " " in p), key=len, reverse=True):
            remaining = remaining.replace(f" {phrase} ", " ")
        words = [w for w in remaining.split() if w not in used and w not in YEAR_WORDS
                 and not re.fullmatch(r"(?:19|20)\d\d|(?:(?:19|20)?\d)0s", w)]  # 1994, 90s, 1990s
        intent.text = " ".join(words)[:200]
        if unfilterable:  # no Children genre in this catalog to check it by: it steers, it does not filter
            intent.audience, intent.text = None, f"for {unfilterable} {intent.text}".strip()
        return intent


def merge(primary: Intent, rules: Intent) -> Intent:
    """The model's grounded reading completed by the rules' reading: lists are united (an explicit
    'not X' is never lost), and what the model left empty is taken from the rules."""
    merged = primary.model_copy(deep=True)
    for name in ("anchors", "exclude_items", "exclude_genres", "genres", "moods", "themes", "unresolved"):
        values = getattr(merged, name)
        values.extend(v for v in getattr(rules, name) if v not in values)
    merged.suggestions = {**rules.suggestions, **merged.suggestions}
    merged.alternatives = {**rules.alternatives, **merged.alternatives}
    merged.exclude_items = [i for i in merged.exclude_items if i not in merged.anchors]
    merged.genres = [g for g in merged.genres if g not in merged.exclude_genres]
    if merged.year_min is None and merged.year_max is None:
        merged.year_min, merged.year_max = rules.year_min, rules.year_max
    merged.audience = merged.audience or rules.audience
    merged.era = merged.era or rules.era if merged.year_min is None and merged.year_max is None else None
    merged.text = rules.text or merged.text  # the rules' rest has the titles and filters taken out
    return merged
