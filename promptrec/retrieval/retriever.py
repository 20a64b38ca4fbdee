"""Candidate retrieval: Chroma nearest neighbours of the user's vector, pooled with collaborative
top items, scored by every source and fused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..collab.base import recency_weights
from ..data import Catalog
from ..types import Candidate, History
from .collaborative import CollaborativeModel
from .embeddings import Embedder, normalize
from .fusion import fuse
from .new_slot import place_new
from .steering import ANCHOR, REQUEST, RequestSources, Steer
from .store import ItemVectorStore

EMBEDDING = "embedding"
COLD = "cold"  # items outside the collaborative index, scored from their text (promptrec.knowledge.new_items)


def neutral_for_new(sources: Mapping[str, np.ndarray], is_new: np.ndarray) -> dict[str, np.ndarray]:
    """Sources that cannot score new items (the collaborative ones) count as neutral for them: their
    missing value becomes the mean over the pool's other items, instead of the pool's minimum that
    :func:`~promptrec.retrieval.fusion.standardize` would give (no evidence is not evidence against)."""
    out = dict(sources)
    for name, values in sources.items():
        if name in (EMBEDDING, COLD, REQUEST) or not is_new.any():
            continue
        values = np.asarray(values, dtype=np.float64)
        known = np.isfinite(values) & ~is_new
        if known.any():
            out[name] = np.where(is_new & ~np.isfinite(values), values[known].mean(), values)
    return out


class CandidateRetriever:
    """Pools candidates from Chroma and the collaborative scorers, then fuses their scores.

    Args:
        store: Item vectors.
        embedder: Embeds free-text requests.
        catalog: Titles for the candidates.
        collab: Fitted collaborative model, or None for embedding-only retrieval.
        weights: Fusion weight per source (``embedding`` and the scorer names).
        pool_depth: Candidates taken from each source before fusion.
        half_life: Recency half-life (in history positions) of the user's embedding vector.
        history_window: Most recent history items averaged into the user's vector.
        request_weight: Weight of a free-text request against the history in the query vector.
        steering_weights: Weights of the ``request`` and ``anchor`` sources, used only for a
            steered call (one with a :class:`Steer`).
        new_items: Scores items the collaborative model cannot (``items``, ``index``, ``scores(history)``,
            ``pool_scores(history, items)``, ``interactions``; :class:`~promptrec.knowledge.new_items.NewItemScorer`):
            the ``cold`` source, which pools the best new items and scores every pooled item on one scale.
        ranker: A learned fusion (``ranker(history, items, profile) -> scores``) that orders an
            unsteered pool instead of the weighted sum (:mod:`promptrec.ranking`); None: the sum.
        new_slot: With ``new_items``: the position reserved for the best new item when none of the first
            ``new_slot`` is new (:func:`~promptrec.retrieval.new_slot.place_new`); None or 0: none.
    """

    def __init__(
        self,
        store: ItemVectorStore,
        embedder: Embedder,
        catalog: Catalog,
        collab: CollaborativeModel | None,
        weights: Mapping[str, float],
        pool_depth: int = 200,
        half_life: float | None = 20.0,
        history_window: int = 50,
        request_weight: float = 1.0,
        steering_weights: Mapping[str, float] | None = None,
        new_items=None,
        ranker=None,
        new_slot: int | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.catalog = catalog
        self.collab = collab
        self.weights = dict(weights)
        self.pool_depth = pool_depth
        self.half_life = half_life
        self.history_window = history_window
        self.request_weight = request_weight
        self.steering_weights = dict(steering_weights or {REQUEST: 1.0, ANCHOR: 1.0})
        self.steering = RequestSources(store, embedder, catalog, collab)
        self.new_items = new_items
        self.ranker = ranker
        self.new_slot = new_slot if new_items is not None else None

    def steer(self, intent) -> Steer | None:
        """A request prepared for :meth:`retrieve` (None when it asks nothing)."""
        return None if intent is None or intent.is_empty else self.steering.prepare(intent)

    def weights_for(self, steer: Steer | None) -> dict[str, float]:
        return {**self.weights, **self.steering_weights} if steer is not None else dict(self.weights)

    def query_vector(self, history: Sequence[str], request: str | None = None) -> np.ndarray | None:
        """Recency-weighted mean of the recent history vectors, plus the request's vector."""
        recent = list(history[-self.history_window :])
        found = self.store.vectors(recent)
        total = np.zeros(self.embedder.dimension, dtype=np.float64)
        if found:
            weights = recency_weights(len(recent), self.half_life)
            for weight, item in zip(weights, recent):
                if item in found:
                    total += weight * found[item]
            total = normalize(total) if np.any(total) else total
        if request:
            total = total + self.request_weight * self.embedder.embed([request])[0]
        return normalize(total) if np.any(total) else None

    def pool(
        self,
        user: History,
        request: str | None = None,
        exclude: Sequence[str] = (),
        every_source: bool = False,
        steer: Steer | None = None,
    ) -> tuple[list[str], dict[str, np.ndarray]]:
        """Pool the top ``pool_depth`` items of each source (with a non-zero weight, or of every
        source), leaving out history and ``exclude``; return them with every source's raw scores.

        With ``steer``, only items the request allows are pooled, the request's own top items join
        the pool, and the ``request`` and ``anchor`` sources are scored too."""
        history, times = user.items, user.timestamps
        banned = set(history) | set(exclude)
        weights = self.weights_for(steer)
        admits = steer.admits if steer is not None else (lambda item: True)
        query = self.query_vector(history, None if steer is not None else request)
        pool: dict[str, None] = {}
        if query is not None and (every_source or weights.get(EMBEDDING, 0) > 0):
            if steer is not None and steer.allowed is not None:  # the history's nearest among the allowed items
                nearest = self.steering.top_requested(Steer(steer.intent, query, steer.allowed), self.pool_depth, banned)
                pool.update((i, None) for i in nearest)
            else:
                for item, _ in self.store.query(query, self.pool_depth, banned):
                    if admits(item):
                        pool[item] = None
        cf_scores = self.collab.score(history, times) if self.collab is not None else {}
        anchor = self.steering.anchor_scores(steer) if steer is not None else None
        ranked_sources = dict(cf_scores)
        if anchor is not None:
            ranked_sources[ANCHOR] = anchor
        for name, scores in ranked_sources.items():
            if not every_source and weights.get(name, 0) <= 0:
                continue
            taken = 0
            for idx in np.argsort(-scores, kind="stable"):
                item = self.collab.items[idx]
                if item not in banned and admits(item):
                    pool[item] = None
                    taken += 1
                    if taken >= self.pool_depth:
                        break
        if steer is not None and (every_source or weights.get(REQUEST, 0) > 0):
            pool.update((i, None) for i in self.steering.top_requested(steer, self.pool_depth, banned))
        new = self._new_item_scores(history, weights, every_source)
        if new is not None:
            top = [self.new_items.items[n] for n in np.argsort(-new, kind="stable")]
            pool.update((i, None) for i in [i for i in top if i not in banned and admits(i)][: self.pool_depth])
        items = list(pool)
        sources: dict[str, np.ndarray] = {}
        if items and query is not None:
            vectors = self.store.vectors(items)
            sources[EMBEDDING] = np.array([float(vectors[i] @ query) if i in vectors else np.nan for i in items])
        for name, scores in ranked_sources.items():
            if items:
                sources[name] = np.array(
                    [scores[self.collab.index[i]] if i in self.collab.index else np.nan for i in items]
                )
        if new is not None and items:
            sources[COLD] = self.new_items.pool_scores(history, items)
            if getattr(self.new_items, "neutral_missing", False):
                sources = neutral_for_new(sources, np.array([i in self.new_items.index for i in items]))
        if steer is not None and items:
            sources[REQUEST] = self.steering.request_scores(steer, items)
        return items, sources

    def _new_item_scores(self, history: Sequence[str], weights: Mapping[str, float], every_source: bool):
        if self.new_items is None or not self.new_items.items or not (every_source or weights.get(COLD, 0) > 0):
            return None
        return self.new_items.scores(history)

    def retrieve(
        self,
        user: History,
        depth: int = 20,
        request: str | None = None,
        exclude: Sequence[str] = (),
        evidence_for: int | None = None,
        steer: Steer | None = None,
        profile=None,
        listed: int | None = None,
    ) -> list[Candidate]:
        """The ``depth`` best candidates by fused score; history and ``exclude`` items never appear,
        nor (with ``steer``) any item the request's hard filters or exclusions rule out.

        Args:
            evidence_for: Find the supporting history item for this many top candidates (all by default).
            profile: The user's model-made profile, for a learned ranker's profile signals.
            listed: How many of the candidates are shown (default ``depth``): a reserved place for a new
                item beyond it moves to the last shown position.
        """
        items, sources = self.pool(user, request, exclude, steer=steer)
        history, times = user.items, user.timestamps
        if not items:
            return []
        weights = self.weights_for(steer)
        fused, normalised = fuse(sources, weights)
        if self.ranker is not None and steer is None and request is None:
            fused = np.asarray(self.ranker(user, items, profile), dtype=np.float64)
        order = np.argsort(-fused, kind="stable").tolist()
        if self.new_slot:
            slot = min(self.new_slot, listed or depth)
            items, sources, fused, normalised, order = self._reserve_new(user, items, sources, fused, normalised,
                                                                          order, exclude, steer, slot)
        order = order[:depth]
        limit = depth if evidence_for is None else evidence_for
        return [
            self._candidate(items[n], fused[n], {s: float(v[n]) for s, v in normalised.items()}, history, times,
                            with_evidence=rank < limit, weights=weights)
            for rank, n in enumerate(order)
        ]

    def _reserve_new(self, user: History, items, sources, fused, normalised, order, exclude, steer, slot: int):
        """The ranking with the reserved place for a new item (:func:`place_new`). When the pool has no new
        item (the ``cold`` source has weight 0, so new items are not pooled and cannot change the other
        items' fused order) the best admissible new item joins it first. The placed item's fused score is
        raised to its lower neighbour's, so an order by fused score keeps it in its place."""
        if not self.new_items.items or any(i in self.new_items.index for i in (items[n] for n in order[:slot])):
            return items, sources, fused, normalised, order
        if COLD not in sources or not any(i in self.new_items.index for i in items):
            banned = set(user.items) | set(exclude)
            admits = steer.admits if steer is not None else (lambda item: True)
            scores = self.new_items.scores(user.items)
            best = next((self.new_items.items[n] for n in np.argsort(-scores, kind="stable")
                         if self.new_items.items[n] not in banned and admits(self.new_items.items[n])), None)
            if best is None:
                return items, sources, fused, normalised, order
            cold = np.full(len(items) + 1, np.nan)
            cold[-1] = scores[self.new_items.index[best]]
            items = [*items, best]
            sources = {**{s: np.append(v, np.nan) for s, v in sources.items()}, COLD: cold}
            normalised = {s: np.append(v, 0.0) for s, v in normalised.items()}
            fused = np.append(fused, -np.inf)
            order = [*order, len(items) - 1]
        is_new = [i in self.new_items.index for i in items]
        order = place_new(order, is_new, sources[COLD], slot)
        at = min(slot, len(order)) - 1
        if is_new[order[at]]:
            fused = fused.copy()
            neighbours = [float(fused[order[j]]) for j in (at - 1, at + 1)
                          if 0 <= j < len(order) and np.isfinite(fused[order[j]])]
            fused[order[at]] = float(np.mean(neighbours)) if neighbours else 0.0
        return items, sources, fused, normalised, order

    def _candidate(self, item: str, fused: float, scores: dict[str, float], history, times,
                   with_evidence: bool = True, weights: Mapping[str, float] | None = None) -> Candidate:
        weights = self.weights if weights is None else weights
        contributions = {s: weights.get(s, 0) * v for s, v in scores.items() if s not in (REQUEST, ANCHOR)}
        evidence = None
        for source in sorted(contributions, key=contributions.get, reverse=True) if with_evidence else ():
            evidence = self._evidence(source, item, history, times)
            if evidence:
                break
        interactions = self.new_items.interactions.get(item) if self.new_items is not None else None
        return Candidate(item_id=item, title=self.catalog[item].title, scores=scores, fused=float(fused),
                         evidence=evidence, new_item_interactions=interactions)

    def _evidence(self, source: str, item: str, history: Sequence[str], times) -> str | None:
        if source in (EMBEDDING, COLD):  # a new item: the history item closest to it in text
            recent = list(history[-self.history_window :])
            vectors = self.store.vectors([item, *recent])
            if item not in vectors:
                return None
            sims = [(float(vectors[h] @ vectors[item]), h) for h in recent if h in vectors]
            return max(sims)[1] if sims else None
        return self.collab.evidence(source, history, item, times) if self.collab else None
