"""The claims of a reason and whether the catalog confirms them: what a model's reason states
about an item (genres, themes) and whether the catalog and item features hold it. The product's
explanation gate (:mod:`promptrec.explain`) and the evaluation's explanation metrics
(:mod:`promptrec.evaluation.faithfulness`) read reasons with the same :class:`ClaimReader`.

**Claims.** A reason's claims are the vocabulary terms it states, read after the titles of the
item and of the history items it cites are cut out of it (a title's words are not claims):

- *genres*: every value of the catalog's ``genres`` field (split on ``,`` and ``|``), matched as a
  whole word, case-insensitive, with its plural and common adjective or synonym forms
  (``comedies``, ``romantic``, ``animated``, ``science fiction``, ``kids``, ``noir``, ...);
- *themes*: every phrase of the catalog's ``tags`` field and of the item features' ``themes``
  (of any item), three letters or more, matched as whole words, singular or plural; a short list
  of words reasons use without claiming anything (``fun``, ``classic``, ``story``, ...) is never a claim.

**Confirmed.** A genre claim is confirmed for an item when its catalog genres hold that genre; a
theme claim when the phrase occurs in its tags, genres, other text fields or its features (themes,
mood, audience, description). Tone words a genre implies (``funny``: Comedy, ``scary``: Horror,
``tense``: Thriller, ...) are theme claims that the genre also confirms.

**Leaks.** A reason leaks when it holds a prompt id (``C12``, ``H3``), an ``id``/``item`` number,
a bare number that is the id of the item or a cited item (years 1870-2030 aside), or prompt
wording (``history item``, ``candidate``, ``the customer``, ``json``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .data import Catalog
from .quality import title_core
from .types import ItemFeatures

__all__ = ["ClaimReader", "GENRE_FORMS", "IMPLIED_BY_GENRE", "LEAK_WORDING", "NOT_CLAIMS", "leaks"]

GENRE_FORMS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "adventure": ("adventure", "adventures", "adventurous"),
    "animation": ("animation", "animated", "cartoon", "cartoons"),
    "children": ("children", "children's", "childrens", "kids"),
    "comedy": ("comedy", "comedies", "comedic"),
    "crime": ("crime", "crimes"),
    "documentary": ("documentary", "documentaries"),
    "drama": ("drama", "dramas", "dramatic"),
    "fantasy": ("fantasy", "fantasies"),
    "film-noir": ("film-noir", "film noir", "noir"),
    "horror": ("horror",),
    "imax": ("imax",),
    "musical": ("musical", "musicals"),
    "mystery": ("mystery", "mysteries"),
    "romance": ("romance", "romances", "romantic"),
    "sci-fi": ("sci-fi", "science fiction", "science-fiction", "scifi"),
    "thriller": ("thriller", "thrillers"),
    "war": ("war",),
    "western": ("western", "westerns"),
}
# tone words a genre implies: such a theme claim is also confirmed by the genre ("funny" by Comedy)
IMPLIED_BY_GENRE: dict[str, str] = {
    "funny": "comedy", "humor": "comedy", "humour": "comedy", "humorous": "comedy", "hilarious": "comedy",
    "witty": "comedy", "scary": "horror", "creepy": "horror", "frightening": "horror", "gory": "horror",
    "suspense": "thriller", "suspenseful": "thriller", "tense": "thriller", "gripping": "thriller",
    "love story": "romance", "family": "children", "cartoon": "animation", "space": "sci-fi",
    "futuristic": "sci-fi", "aliens": "sci-fi", "magic": "fantasy", "detective": "mystery",
}
# words reasons use without stating a fact about an item; never claims
NOT_CLAIMS = frozenset("""
fun good great classic classics movie movies film films story stories like love loved favorite
watch watched enjoy enjoyed best new old original entertaining interesting must see seen also
enjoyable popular similar same genre genres theme themes element elements
""".split())
LEAK_WORDING = (
    "history item", "related history", "candidate", "the customer", "taste profile", "between tags", "json",
    "picks", "the request", "instruction", "system prompt", "often chosen by people who liked", "as data",
    "suggested title", "watched title", "shared genre", "shared tag", "shared theme",
)
_PROMPT_ID = re.compile(r"(?<![A-Za-z0-9])[CH]\s?\d{1,3}(?![A-Za-z0-9])")
_ID_WORD = re.compile(r"\b(?:id|item|movie)\s*(?:#|no\.?|:)?\s*\d+\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}(?:[-–]\d{0,4})?\)\s*$")
_ARTICLE_AT_END = re.compile(r"^(?P<core>.+), (?P<article>The|A|An|Les|La|Le|Il|El|Der|Die|Das)$", re.I)


def _split_values(text: str) -> list[str]:
    return [v.strip().lower() for v in re.split(r"[,|]", text or "") if v.strip()]


def _title_forms(title: str) -> list[str]:
    core = _YEAR_SUFFIX.sub("", title).strip()
    match = _ARTICLE_AT_END.match(core)
    forms = [title, core, title_core(title)]
    if match:
        forms.append(f"{match['article']} {match['core']}")
        forms.append(match["core"])
    return sorted({f for f in forms if f}, key=len, reverse=True)


def _pattern(phrase: str) -> re.Pattern:
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<![\w-]){body}(?:s|es)?(?![\w-])", re.I)


def _feature_text(features: ItemFeatures | None) -> str:
    if features is None:
        return ""
    return " ".join([*features.themes, features.mood, features.audience, features.description]).lower()


class ClaimReader:
    """Reads the genre and theme claims of reasons and checks them against the catalog and features.

    Args:
        catalog: The items (their ``genres``, ``tags`` and other text fields).
        features: Item features by item id (a :class:`~promptrec.knowledge.FeatureStore` or a mapping).
    """

    def __init__(self, catalog: Catalog, features=None) -> None:
        self.catalog = catalog
        self.features = features
        genres = {g for item in catalog for g in _split_values(item.fields.get("genres", ""))}
        self.genre_forms: dict[str, tuple[str, ...]] = {g: GENRE_FORMS.get(g, (g,)) for g in genres}
        self._genre_patterns = [(g, _pattern(form)) for g, forms in self.genre_forms.items() for form in forms]
        genre_words = {form for forms in self.genre_forms.values() for form in forms}
        themes = {t for item in catalog for t in _split_values(item.fields.get("tags", ""))} | set(IMPLIED_BY_GENRE)
        for item in catalog:
            themes.update(t.lower() for t in (self._features(item.item_id) or _NoFeatures).themes)
        self.themes = sorted(t for t in themes if len(t) >= 3 and t not in NOT_CLAIMS and t not in genre_words
                             and re.search(r"[a-z]", t))
        self._theme_patterns = [(t, t.split()[0], _pattern(t)) for t in self.themes]
        self._form_genre = {form: g for g, forms in self.genre_forms.items() for form in forms}

    def _features(self, item_id: str) -> ItemFeatures | None:
        if self.features is None:
            return None
        return self.features.get(item_id)

    def claims(self, reason: str, titles: Iterable[str] = ()) -> dict[str, list[str]]:
        """The genres and themes ``reason`` states, once the given titles are cut out of it."""
        text = reason
        for title in titles:
            for form in _title_forms(title):
                text = re.sub(re.escape(form), " ", text, flags=re.I)
        words = set(re.findall(r"[\w'-]+", text.lower()))
        genres = sorted({g for g, p in self._genre_patterns if p.search(text)})
        themes = sorted({t for t, first, p in self._theme_patterns
                         if (first in words or first + "s" in words or first + "es" in words) and p.search(text)})
        return {"genres": genres, "themes": themes}

    def confirms(self, item_id: str, kind: str, term: str) -> bool:
        """Whether the catalog (or the features) of ``item_id`` holds this genre or theme."""
        if item_id not in self.catalog:
            return False
        item = self.catalog[item_id]
        if kind == "genres":
            return term in _split_values(item.fields.get("genres", ""))
        genres = _split_values(item.fields.get("genres", ""))
        implied = IMPLIED_BY_GENRE.get(term)
        if implied and implied in genres:
            return True
        # a phrase made of genre words says the genres: "romantic comedy" holds for Comedy + Romance
        named = [self._form_genre.get(w) or IMPLIED_BY_GENRE.get(w) for w in term.split()]
        if named and all(g is not None and g in genres for g in named):
            return True
        text = " ".join([*(v.lower() for k, v in item.fields.items()), _feature_text(self._features(item_id))])
        return bool(_pattern(term).search(text))

    def verdict(self, item_id: str, reason: str, cited: Sequence[str]) -> dict:
        """Claims of one reason and whether each is confirmed for the item and a cited item."""
        titles = [self.catalog[i].title for i in (item_id, *cited) if i in self.catalog]
        claims = self.claims(reason, titles)
        checked = []
        for kind in ("genres", "themes"):
            for term in claims[kind]:
                ok = self.confirms(item_id, kind, term) and (
                    not cited or any(self.confirms(c, kind, term) for c in cited))
                checked.append({"kind": kind[:-1], "term": term, "confirmed": ok})
        faithful = all(c["confirmed"] for c in checked) if checked else None
        genres = [c for c in checked if c["kind"] == "genre"]
        genre_faithful = all(c["confirmed"] for c in genres) if genres else None
        return {"claims": checked, "faithful": faithful, "genre_faithful": genre_faithful,
                "leak": leaks(reason, [item_id, *cited])}


class _NoFeatures:
    themes: list[str] = []


def leaks(reason: str, ids: Iterable[str] = ()) -> str | None:
    """What internal id or prompt wording ``reason`` holds (None when it holds none)."""
    if m := _PROMPT_ID.search(reason):
        return f"prompt id {m.group(0)!r}"
    if m := _ID_WORD.search(reason):
        return f"id {m.group(0)!r}"
    own = {str(i) for i in ids}
    for m in _NUMBER.finditer(reason):
        number = m.group(0)
        if number in own and not (len(number) == 4 and 1870 <= int(number) <= 2030):
            return f"item id {number!r}"
    lower = reason.lower()
    wording = next((w for w in LEAK_WORDING if w in lower), None)
    return f"prompt wording {wording!r}" if wording else None
