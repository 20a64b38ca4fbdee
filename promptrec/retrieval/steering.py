"""A typed request as retrieval sources of its own.

- ``request``: cosine similarity of each item to the request's text vector (genres, audience,
  moods, themes, anchors' titles and the free text), over the items the request allows; its top
  items enter the candidate pool even when the history points elsewhere.
- ``anchor``: the collaborative score of each item for a history made of the anchors alone
  ("more like Heat": what people who chose Heat chose), so an anchor is not drowned by a long history.

Hard filters and exclusions decide which items may be candidates at all (:attr:`Steer.allowed`),
before fusion and rerank. The history still personalises within what the request allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..data import Catalog
from ..intent import Intent
from .collaborative import CollaborativeModel
from .embeddings import Embedder, normalize
from .store import ItemVectorStore

REQUEST = "request"
ANCHOR = "anchor"
STEERING_SOURCES = (REQUEST, ANCHOR)


@dataclass
class Steer:
    """A request prepared for retrieval."""

    intent: Intent
    vector: np.ndarray | None
    allowed: set[str] | None  # None: no hard filter

    def admits(self, item_id: str) -> bool:
        return (self.allowed is None or item_id in self.allowed) and item_id not in self.intent.exclude_items


class RequestSources:
    """Scores the ``request`` and ``anchor`` sources for a prepared request.

    Args:
        store: Item vectors (all of them are read once, on first use, for exact request scores).
        embedder: Embeds the request text.
        catalog: Items, checked against the intent's hard filters.
        collab: The fitted collaborative model (anchor scores); None leaves ``anchor`` out.
        anchor_scorer: Which collaborative scorer scores the anchors (default: the first one).
    """

    def __init__(self, store: ItemVectorStore, embedder: Embedder, catalog: Catalog,
                 collab: CollaborativeModel | None = None, anchor_scorer: str | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.catalog = catalog
        self.collab = collab
        self.anchor_scorer = anchor_scorer

    @cached_property
    def _matrix(self) -> tuple[list[str], dict[str, int], np.ndarray]:
        ids = [i for i in self.catalog.ids]
        found = self.store.vectors(ids)
        ids = [i for i in ids if i in found]
        matrix = np.stack([found[i] for i in ids]) if ids else np.zeros((0, self.embedder.dimension), np.float32)
        return ids, {item: n for n, item in enumerate(ids)}, matrix

    def prepare(self, intent: Intent) -> Steer:
        """The request's vector (its text plus its anchors' vectors) and the items it allows."""
        allowed = {item.item_id for item in self.catalog if intent.allows(item)} if intent.has_filters else None
        titles = {a: self.catalog[a].title for a in intent.anchors if a in self.catalog}
        text = intent.query_text(titles)
        parts = []
        if text:
            parts.append(self.embedder.embed([text])[0])
        anchors = self.store.vectors(list(intent.anchors)) if intent.anchors else {}
        parts += [anchors[a] for a in intent.anchors if a in anchors]
        vector = normalize(np.mean(parts, axis=0)) if parts else None
        return Steer(intent, vector, allowed)

    def request_scores(self, steer: Steer, items: Sequence[str]) -> np.ndarray:
        ids, index, matrix = self._matrix
        if steer.vector is None:
            return np.full(len(items), np.nan)
        sims = matrix @ steer.vector
        return np.array([float(sims[index[i]]) if i in index else np.nan for i in items])

    def top_requested(self, steer: Steer, n: int, banned: set[str]) -> list[str]:
        """The ``n`` items closest to the request among those it allows, leaving out ``banned``: from
        Chroma's index without a hard filter, exactly over the allowed items with one (a filtered
        nearest-neighbour query could come back short)."""
        if steer.vector is None:
            return []
        if steer.allowed is None:  # no hard filter: Chroma's nearest neighbours of the request's vector
            found = self.store.query(steer.vector, n + len(steer.intent.exclude_items), banned)
            return [item for item, _ in found if steer.admits(item)][:n]
        ids, _, matrix = self._matrix  # a hard filter: exact similarity over the items it allows
        sims = matrix @ steer.vector
        out = []
        for row in np.argsort(-sims, kind="stable"):
            item = ids[row]
            if item not in banned and steer.admits(item):
                out.append(item)
                if len(out) >= n:
                    break
        return out

    def anchor_scores(self, steer: Steer) -> np.ndarray | None:
        """Collaborative scores over ``collab.items`` for a history of the anchors alone."""
        if self.collab is None or not steer.intent.anchors or not self.collab.scorers:
            return None
        name = self.anchor_scorer if self.anchor_scorer in self.collab.scorers else next(iter(self.collab.scorers))
        anchors = [a for a in steer.intent.anchors if a in self.collab.index]
        if not anchors:
            return None
        return self.collab.score(anchors)[name]
