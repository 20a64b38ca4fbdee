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
from .store import ItemVectorStore

EMBEDDING = "embedding"


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
    ) -> tuple[list[str], dict[str, np.ndarray]]:
        """Pool the top ``pool_depth`` items of each source (with a non-zero weight, or of every
        source), leaving out history and ``exclude``; return them with every source's raw scores."""
        history, times = user.items, user.timestamps
        banned = set(history) | set(exclude)
        query = self.query_vector(history, request)
        pool: dict[str, None] = {}
        if query is not None and (every_source or self.weights.get(EMBEDDING, 0) > 0):
            for item, _ in self.store.query(query, self.pool_depth, banned):
                pool[item] = None
        cf_scores = self.collab.score(history, times) if self.collab is not None else {}
        for name, scores in cf_scores.items():
            if not every_source and self.weights.get(name, 0) <= 0:
                continue
            taken = 0
            for idx in np.argsort(-scores, kind="stable"):
                item = self.collab.items[idx]
                if item not in banned:
                    pool[item] = None
                    taken += 1
                    if taken >= self.pool_depth:
                        break
        items = list(pool)
        sources: dict[str, np.ndarray] = {}
        if items and query is not None:
            vectors = self.store.vectors(items)
            sources[EMBEDDING] = np.array([float(vectors[i] @ query) if i in vectors else np.nan for i in items])
        for name, scores in cf_scores.items():
            if items:
                sources[name] = np.array(
                    [scores[self.collab.index[i]] if i in self.collab.index else np.nan for i in items]
                )
        return items, sources

    def retrieve(
        self,
        user: History,
        depth: int = 20,
        request: str | None = None,
        exclude: Sequence[str] = (),
        evidence_for: int | None = None,
    ) -> list[Candidate]:
        """The ``depth`` best candidates by fused score; history and ``exclude`` items never appear.

        Args:
            evidence_for: Find the supporting history item for this many top candidates (all by default).
        """
        items, sources = self.pool(user, request, exclude)
        history, times = user.items, user.timestamps
        if not items:
            return []
        fused, normalised = fuse(sources, self.weights)
        order = np.argsort(-fused, kind="stable")[:depth]
        limit = depth if evidence_for is None else evidence_for
        return [
            self._candidate(items[n], fused[n], {s: float(v[n]) for s, v in normalised.items()}, history, times,
                            with_evidence=rank < limit)
            for rank, n in enumerate(order)
        ]

    def _candidate(self, item: str, fused: float, scores: dict[str, float], history, times,
                   with_evidence: bool = True) -> Candidate:
        contributions = {s: self.weights.get(s, 0) * v for s, v in scores.items()}
        evidence = None
        for source in sorted(contributions, key=contributions.get, reverse=True) if with_evidence else ():
            evidence = self._evidence(source, item, history, times)
            if evidence:
                break
        return Candidate(item_id=item, title=self.catalog[item].title, scores=scores, fused=float(fused),
                         evidence=evidence)

    def _evidence(self, source: str, item: str, history: Sequence[str], times) -> str | None:
        if source == EMBEDDING:
            recent = list(history[-self.history_window :])
            vectors = self.store.vectors([item, *recent])
            if item not in vectors:
                return None
            sims = [(float(vectors[h] @ vectors[item]), h) for h in recent if h in vectors]
            return max(sims)[1] if sims else None
        return self.collab.evidence(source, history, item, times) if self.collab else None
