"""How model features relate to the catalog: coverage, rejected share by reason, and contradictions
with the catalog's own genres.

Contradiction (per featurized item, on the features that passed the schema and the degenerate check):

- **asserts an unlisted genre**: a theme, the mood or the description names a genre of the catalog's
  genre vocabulary (the set of every genre any item lists, matched as a whole word, case-insensitive,
  with the spelling variants in :data:`ALIASES`) that this item's genres do not list;
- **denies a listed genre**: a negation (not, no, non-, never, without, isn't) followed within two
  words by a genre the item lists.

An item contradicts its catalog genres when either holds. Items whose catalog lists no genre are left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from ..data import Catalog
from ..knowledge.degenerate import DEGENERATE
from ..knowledge.items import FeatureRecord
from ..types import ItemFeatures

ALIASES = {
    "sci-fi": ("sci-fi", "sci fi", "science fiction", "science-fiction", "scifi"),
    "children": ("children", "children's", "kids", "kid's"),
    "film-noir": ("film-noir", "film noir", "noir"),
    "musical": ("musical", "musicals"),
    "documentary": ("documentary", "documentaries"),
    "thriller": ("thriller", "thrillers"),
    "western": ("western", "westerns"),
    "comedy": ("comedy", "comedies"),
    "drama": ("drama", "dramas"),
    "romance": ("romance",),
    "horror": ("horror",),
    "animation": ("animation", "animated"),
    "war": ("war",),
    "mystery": ("mystery", "mysteries"),
}
_NEGATION = r"(?:not|no|non|never|without|isn't|isnt)"


def genres_of(item) -> set[str]:
    return {g.strip().casefold() for g in (item.fields.get("genres") or "").split(",") if g.strip()}


def vocabulary(catalog: Catalog) -> dict[str, re.Pattern]:
    """Each catalog genre (case-folded) and the whole-word pattern that finds it in text."""
    genres: set[str] = set()
    for item in catalog:
        genres |= genres_of(item)
    patterns = {}
    for genre in sorted(genres):
        spellings = ALIASES.get(genre, (genre,))
        alternatives = "|".join(re.escape(s).replace(r"\ ", r"[\s-]") for s in spellings)
        patterns[genre] = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)
    return patterns


def contradictions(features: ItemFeatures, listed: set[str], patterns: dict[str, re.Pattern]) -> dict[str, list[str]]:
    """``{"asserted": [unlisted genres named], "denied": [listed genres negated]}`` for one item."""
    text = " | ".join([*features.themes, features.mood, features.description])
    asserted = [g for g, p in patterns.items() if g not in listed and p.search(text)]
    denied = []
    for genre in listed:
        pattern = patterns.get(genre)
        if pattern is None:
            continue
        negated = re.compile(rf"\b{_NEGATION}\b[\s-]+(?:\w+\s+){{0,2}}(?:{pattern.pattern})", re.IGNORECASE)
        if negated.search(text):
            denied.append(genre)
    return {"asserted": asserted, "denied": denied}


def summarize(records: Iterable[FeatureRecord], catalog: Catalog, wanted: list[str]) -> dict:
    """Coverage over ``wanted`` item ids, rejected share by reason, contradiction rates."""
    by_id = {r.item_id: r for r in records}
    patterns = vocabulary(catalog)
    reasons: Counter = Counter()
    failed = good = 0
    checked = contradicting = asserted_items = denied_items = 0
    asserted_genres: Counter = Counter()
    for item_id in wanted:
        record = by_id.get(item_id)
        if record is None:
            continue
        if record.features is None:
            if (record.error or "").startswith(DEGENERATE):
                reasons[record.error[len(DEGENERATE):]] += 1
            else:
                failed += 1
            continue
        good += 1
        item = catalog.get(item_id)
        listed = genres_of(item) if item is not None else set()
        if not listed:
            continue
        found = contradictions(record.features, listed, patterns)
        checked += 1
        asserted_items += bool(found["asserted"])
        denied_items += bool(found["denied"])
        contradicting += bool(found["asserted"] or found["denied"])
        asserted_genres.update(found["asserted"])
    attempted = good + failed + sum(reasons.values())
    return {
        "wanted": len(wanted), "attempted": attempted, "with_features": good, "failed": failed,
        "rejected": dict(reasons.most_common()), "rejected_total": sum(reasons.values()),
        "rejected_share": round(sum(reasons.values()) / attempted, 4) if attempted else None,
        "coverage": round(good / len(wanted), 4) if wanted else None,
        "contradiction": {"checked": checked, "items": contradicting,
                          "share": round(contradicting / checked, 4) if checked else None,
                          "asserts_unlisted": asserted_items, "denies_listed": denied_items,
                          "unlisted_genres": dict(asserted_genres.most_common(8))},
    }


__all__ = ["ALIASES", "contradictions", "genres_of", "summarize", "vocabulary"]


_STOP = {"the", "and", "for", "with", "about", "from", "film", "movie", "story"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.casefold()) if len(w) >= 3 and w not in _STOP}


def _confirmed(themes: list[str], item) -> bool:
    """Whether a theme shares a word (3+ letters, not a stop word such as 'story') with the item's own
    genres and user tags."""
    own = _words(f"{item.fields.get('genres') or ''} {item.fields.get('tags') or ''}")
    return any(_words(theme) & own for theme in themes)


def closed_picks(records: Iterable[FeatureRecord], catalog: Catalog, wanted: list[str], seed: int = 0) -> dict:
    """What a closed-vocabulary feature store picked over ``wanted`` items: how often each mood, audience
    and theme was chosen (a model that always picks one word says nothing), and how often an item's themes
    are confirmed by its own genres or user tags (a shared word), against the same measure with the records
    shuffled across items (seeded): the share a pick that ignores the item would reach."""
    import numpy as np

    by_id = {r.item_id: r for r in records}
    good = [(catalog.get(i), by_id[i].features) for i in wanted
            if i in by_id and by_id[i].features is not None and catalog.get(i) is not None]
    moods = Counter(f.mood for _, f in good)
    audiences = Counter(f.audience for _, f in good)
    themes = Counter(t for _, f in good for t in f.themes)
    tagged = [(item, f) for item, f in good if item.fields.get("tags")]
    agree = sum(_confirmed(f.themes, item) for item, f in tagged)
    order = np.random.default_rng(seed).permutation(len(tagged))
    shuffled = sum(_confirmed(tagged[j][1].themes, tagged[n][0]) for n, j in enumerate(order))
    share = (lambda c: {k: round(v / len(good), 4) for k, v in c.most_common(12)}) if good else (lambda c: {})
    return {"items": len(good), "mood": share(moods), "audience": share(audiences), "themes": share(themes),
            "distinct_themes": len(themes), "tagged_items": len(tagged),
            "confirmed_by_tags": round(agree / len(tagged), 4) if tagged else None,
            "confirmed_shuffled": round(shuffled / len(tagged), 4) if tagged else None}


def next_item_recall(split, stage: str, vectors: Mapping[str, Mapping[str, np.ndarray]], k: int = 100,
                     half_life: float | None = 20.0, window: int = 50) -> dict:
    """Do the vectors carry what a user chooses next? Per vector set: the share of ``stage`` targets among
    the ``k`` items most similar to the recency-weighted mean of the history's vectors (history items
    excluded; items without a vector never retrieved; ties at the cut give the target its expected share),
    overall and by the target's popularity tier
    (:func:`promptrec.evaluation.learned.popularity_tiers` on the stage's fit data), beside chance
    (``k`` over the items a user can be given)."""
    from ..ranking.signals import _mean_vector as mean_vector  # not renamed: that module is hashed into fitted models
    from .learned import popularity_tiers

    counts = np.asarray(split.fit_matrix(stage).sum(axis=0)).ravel()
    tiers = popularity_tiers(counts, split.items)
    histories = [[split.items[i] for i in split.history(u, stage)] for u in range(split.n_users)]
    targets = [split.items[int(t)] for t in split.targets(stage)]
    tier_of = np.array([tiers.get(t, "tail") for t in targets])
    out: dict = {"k": k, "stage": stage, "users": int(split.n_users),
                 "tiers": {t: int((tier_of == t).sum()) for t in ("head", "torso", "tail")}, "rows": {},
                 "chance": float(np.mean([k / max(len(split.items) - len(set(h)), 1) for h in histories]))}
    for name, vecs in vectors.items():
        ids = [i for i in split.items if i in vecs]
        matrix = np.stack([vecs[i] for i in ids]).astype(np.float64) if ids else np.zeros((0, 1))
        position = {i: n for n, i in enumerate(ids)}
        hits = np.zeros(split.n_users)
        for u, (history, target) in enumerate(zip(histories, targets)):
            mean = mean_vector(history, vecs, half_life, window)
            if mean is None or target not in position:
                continue
            scores = matrix @ mean
            scores[[position[i] for i in history if i in position]] = -np.inf
            # items with the same text share a vector (closed features often do): a tie at the cut counts
            # the target's expected share under a random order of the tied items
            mine = scores[position[target]]
            above, equal = int(np.sum(scores > mine)), int(np.sum(scores == mine))
            hits[u] = min(max((k - above) / equal, 0.0), 1.0)
        out["rows"][name] = {"all": float(hits.mean()),
                             **{t: float(hits[tier_of == t].mean()) if (tier_of == t).any() else None
                                for t in ("head", "torso", "tail")}}
    return out
