"""Explanation metrics: are the model's reasons specific, true and varied? Pure functions over
recommendation lists (:class:`~promptrec.types.RecommendationList`), the catalog and, optionally,
item features (docs/evaluation.md, "Explanation metrics").

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
mood, audience, description). A reason is **faithful** when it makes at least one claim and each
claim is confirmed for the recommended item and for at least one item it cites (the item alone
when it cites none). ``faithfulness`` is the share of faithful reasons among the model's reasons
that make a claim; ``claim_rate`` says how many make one (a reason without any claim is counted
there, not as faithful).

Tone words a genre implies (``funny``: Comedy, ``scary``: Horror, ``tense``: Thriller, ...) are
theme claims that the genre also confirms. ``genre_faithfulness`` reads the genre claims alone (the
share of reasons stating a genre whose every stated genre is confirmed): catalog tags are sparse
(ml-latest-small tags about a fifth of its movies), so without item features a true theme often
cannot be confirmed, and ``faithfulness`` is then a lower bound.

**Leaks.** A reason leaks when it holds a prompt id (``C12``, ``H3``), an ``id``/``item`` number,
a bare number that is the id of the item or a cited item (years 1870-2030 aside), or prompt
wording (``history item``, ``candidate``, ``the customer``, ``json``, ...).

**Citations.** ``distinct_cited_per_list``: distinct history items cited across a list's shown
items (model reasons and evidence explanations alike: what the user reads); the share of lists
with at least 3, among users with at least 3 history items.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..data import Catalog
from ..types import ItemFeatures, RecommendationList

__all__ = ["ClaimReader", "explanation_metrics", "reason_verdict", "sample_reasons"]

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
""".split())
LEAK_WORDING = (
    "history item", "related history", "candidate", "the customer", "taste profile", "between tags", "json",
    "picks", "the request", "instruction", "system prompt", "often chosen by people who liked", "as data",
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
    forms = [title, core]
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
        implied = IMPLIED_BY_GENRE.get(term)
        if implied and implied in _split_values(item.fields.get("genres", "")):
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


def reason_verdict(recommendation, reader: ClaimReader) -> dict:
    """The verdict (:meth:`ClaimReader.verdict`) on one shown item's model reason."""
    return reader.verdict(recommendation.item_id, recommendation.explanation, recommendation.cited_history)


def explanation_metrics(lists: Sequence[RecommendationList], catalog: Catalog, features=None,
                        history_lengths: Sequence[int] | None = None, reader: ClaimReader | None = None) -> dict:
    """Faithfulness, claim, leak and citation figures of the shown items of ``lists``.

    Args:
        lists: The answers; their items' ``explanation``, ``cited_history`` and ``explained_by``.
        catalog, features: Where claims are checked (see the module doc).
        history_lengths: Per list, the user's history length (for the share of lists citing at
            least 3 distinct items, among users with at least 3 history items).

    Returns:
        ``reasons`` (model reasons read), ``claim_rate``, ``faithfulness``, ``claims_confirmed_rate``,
        ``leak_rate``, ``distinct_cited_per_list``, ``distinct_cited_llm_per_list``,
        ``lists_citing_3_rate`` and, per list, ``per_list`` counts (for intervals over users).
    """
    reader = reader or ClaimReader(catalog, features)
    per_list = []
    for n, answer in enumerate(lists):
        reasons = with_claims = faithful = claims = confirmed = leaked = with_genres = genre_faithful = 0
        cited_all: set[str] = set()
        cited_llm: set[str] = set()
        for rec in answer.items:
            cited_all.update(rec.cited_history)
            if rec.explained_by != "llm":
                continue
            cited_llm.update(rec.cited_history)
            verdict = reason_verdict(rec, reader)
            reasons += 1
            leaked += verdict["leak"] is not None
            if verdict["claims"]:
                with_claims += 1
                faithful += bool(verdict["faithful"])
                claims += len(verdict["claims"])
                confirmed += sum(c["confirmed"] for c in verdict["claims"])
            if verdict["genre_faithful"] is not None:
                with_genres += 1
                genre_faithful += verdict["genre_faithful"]
        length = history_lengths[n] if history_lengths is not None else None
        per_list.append({"reasons": reasons, "with_claims": with_claims, "faithful": faithful, "claims": claims,
                         "confirmed": confirmed, "leaked": leaked, "with_genres": with_genres,
                         "genre_faithful": genre_faithful, "distinct_cited": len(cited_all),
                         "distinct_cited_llm": len(cited_llm), "history": length})
    return {**summarize(per_list), "per_list": per_list}


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def summarize(per_list: Sequence[Mapping]) -> dict[str, float]:
    """The figures of :func:`explanation_metrics` from its ``per_list`` counts (of any subset of lists)."""
    total = {key: sum(p[key] for p in per_list) for key in
             ("reasons", "with_claims", "faithful", "claims", "confirmed", "leaked", "with_genres", "genre_faithful")}
    eligible = [p for p in per_list if p.get("history") is not None and p["history"] >= 3]
    return {
        "reasons": int(total["reasons"]),
        "claim_rate": _ratio(total["with_claims"], total["reasons"]),
        "faithfulness": _ratio(total["faithful"], total["with_claims"]),
        "claims_confirmed_rate": _ratio(total["confirmed"], total["claims"]),
        "genre_faithfulness": _ratio(total["genre_faithful"], total["with_genres"]),
        "leak_rate": _ratio(total["leaked"], total["reasons"]),
        "distinct_cited_per_list": float(np.mean([p["distinct_cited"] for p in per_list])) if per_list else float("nan"),
        "distinct_cited_llm_per_list": (float(np.mean([p["distinct_cited_llm"] for p in per_list]))
                                        if per_list else float("nan")),
        "lists_citing_3_rate": (float(np.mean([p["distinct_cited"] >= 3 for p in eligible]))
                                if eligible else float("nan")),
    }


def sample_reasons(lists: Sequence[RecommendationList], catalog: Catalog, features=None, n: int = 10,
                   seed: int = 0, reader: ClaimReader | None = None) -> list[dict]:
    """A seeded sample of ``n`` model reasons with their claims and verdicts, for a report."""
    reader = reader or ClaimReader(catalog, features)
    pool = [(answer, rec) for answer in lists for rec in answer.items if rec.explained_by == "llm"]
    if not pool:
        return []
    chosen = sorted(np.random.default_rng(seed).choice(len(pool), size=min(n, len(pool)), replace=False).tolist())
    out = []
    for i in chosen:
        answer, rec = pool[i]
        verdict = reason_verdict(rec, reader)
        out.append({"user": answer.user_id, "item": rec.item_id, "title": rec.title,
                     "cited": [catalog[c].title if c in catalog else c for c in rec.cited_history],
                     "reason": rec.explanation, **verdict})
    return out
