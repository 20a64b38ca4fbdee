"""Explanation metrics: are the model's reasons specific, true and varied? Pure functions over
recommendation lists (:class:`~promptrec.types.RecommendationList`), the catalog and, optionally,
item features (docs/evaluation.md, "Explanation metrics").

**Claims, confirmed, leaks** are read by :class:`~promptrec.claims.ClaimReader` (the product's
explanation gate reads reasons with the same reader; see :mod:`promptrec.claims`). A reason is
**faithful** when it makes at least one claim and each claim is confirmed for the recommended item
and for at least one item it cites (the item alone when it cites none). ``faithfulness`` is the
share of faithful reasons among the model's reasons that make a claim; ``claim_rate`` says how many
make one (a reason without any claim is counted there, not as faithful).

``genre_faithfulness`` reads the genre claims alone (the share of reasons stating a genre whose
every stated genre is confirmed): catalog tags are sparse (ml-latest-small tags about a fifth of
its movies), so without item features a true theme often cannot be confirmed, and
``faithfulness`` is then a lower bound.

**Citations.** ``distinct_cited_per_list``: distinct history items cited across a list's shown
items (model reasons and evidence explanations alike: what the user reads); the share of lists
with at least 3, among users with at least 3 history items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..claims import ClaimReader, leaks
from ..data import Catalog
from ..types import RecommendationList
from .beyond import percentile_interval

__all__ = ["ClaimReader", "explanation_figures", "explanation_metrics", "leaks", "reason_verdict", "sample_reasons",
           "seeded_choice"]


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
        ``shown_faithfulness`` (every shown explanation stating a claim, evidence sentences included),
        ``leak_rate``, ``distinct_cited_per_list``, ``distinct_cited_llm_per_list``,
        ``lists_citing_3_rate`` and, per list, ``per_list`` counts (for intervals over users).
    """
    reader = reader or ClaimReader(catalog, features)
    per_list = []
    for n, answer in enumerate(lists):
        reasons = with_claims = faithful = claims = confirmed = leaked = with_genres = genre_faithful = 0
        shown_claims = shown_faithful = 0
        cited_all: set[str] = set()
        cited_llm: set[str] = set()
        for rec in answer.items:
            cited_all.update(rec.cited_history)
            verdict = reason_verdict(rec, reader) if rec.explanation else None
            if verdict is not None and verdict["claims"]:  # what the person reads, model reason or evidence
                shown_claims += 1
                shown_faithful += bool(verdict["faithful"])
            if rec.explained_by != "llm":
                continue
            cited_llm.update(rec.cited_history)
            verdict = verdict or reason_verdict(rec, reader)
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
                         "genre_faithful": genre_faithful, "shown_claims": shown_claims,
                         "shown_faithful": shown_faithful, "distinct_cited": len(cited_all),
                         "distinct_cited_llm": len(cited_llm), "history": length})
    return {**summarize(per_list), "per_list": per_list}


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def summarize(per_list: Sequence[Mapping]) -> dict[str, float]:
    """The figures of :func:`explanation_metrics` from its ``per_list`` counts (of any subset of lists)."""
    total = {key: sum(p[key] for p in per_list) for key in
             ("reasons", "with_claims", "faithful", "claims", "confirmed", "leaked", "with_genres", "genre_faithful",
              "shown_claims", "shown_faithful")}
    eligible = [p for p in per_list if p.get("history") is not None and p["history"] >= 3]
    return {
        "reasons": int(total["reasons"]),
        "claim_rate": _ratio(total["with_claims"], total["reasons"]),
        "faithfulness": _ratio(total["faithful"], total["with_claims"]),
        "claims_confirmed_rate": _ratio(total["confirmed"], total["claims"]),
        "genre_faithfulness": _ratio(total["genre_faithful"], total["with_genres"]),
        # every shown explanation that states a genre or theme (model reasons and evidence sentences alike)
        "shown_faithfulness": _ratio(total["shown_faithful"], total["shown_claims"]),
        "leak_rate": _ratio(total["leaked"], total["reasons"]),
        "distinct_cited_per_list": float(np.mean([p["distinct_cited"] for p in per_list])) if per_list else float("nan"),
        "distinct_cited_llm_per_list": (float(np.mean([p["distinct_cited_llm"] for p in per_list]))
                                        if per_list else float("nan")),
        "lists_citing_3_rate": (float(np.mean([p["distinct_cited"] >= 3 for p in eligible]))
                                if eligible else float("nan")),
    }


def explanation_figures(answers: Sequence[RecommendationList], catalog: Catalog, history_lengths: Sequence[int],
                        reader: ClaimReader, idx: np.ndarray) -> tuple[dict, dict]:
    """``(metrics, intervals)``: :func:`explanation_metrics` of the shown ``answers`` and the 95%
    interval of each over the bootstrap resamples ``idx`` of the lists (rows of list indices)."""
    metrics = explanation_metrics(answers, catalog, history_lengths=history_lengths, reader=reader)
    per_list = metrics.pop("per_list")
    resampled = [summarize([per_list[i] for i in row]) for row in idx]
    intervals = {name: percentile_interval(np.array([r[name] for r in resampled]))
                 for name in metrics if name != "reasons"}
    return metrics, intervals


def seeded_choice(pool: Sequence, n: int, seed: int = 0) -> list:
    """``n`` entries of ``pool`` (all when it has fewer), drawn without replacement by ``seed``, in pool order."""
    if not pool:
        return []
    chosen = np.random.default_rng(seed).choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[i] for i in sorted(chosen.tolist())]


def sample_reasons(lists: Sequence[RecommendationList], catalog: Catalog, features=None, n: int = 10,
                   seed: int = 0, reader: ClaimReader | None = None) -> list[dict]:
    """A seeded sample of ``n`` model reasons with their claims and verdicts, for a report."""
    reader = reader or ClaimReader(catalog, features)
    pool = [(answer, rec) for answer in lists for rec in answer.items if rec.explained_by == "llm"]
    out = []
    for answer, rec in seeded_choice(pool, n, seed):
        verdict = reason_verdict(rec, reader)
        out.append({"user": answer.user_id, "item": rec.item_id, "title": rec.title,
                     "cited": [catalog[c].title if c in catalog else c for c in rec.cited_history],
                     "reason": rec.explanation, **verdict})
    return out
