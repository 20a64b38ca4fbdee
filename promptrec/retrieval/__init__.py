"""Retrieval: offline embeddings, the Chroma item store, collaborative evidence, fusion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .collaborative import CollaborativeModel
from .embeddings import Embedder, EmbeddingError, MiniLMEmbedder, make_embedder
from .fusion import fuse, standardize
from .retriever import EMBEDDING, CandidateRetriever
from .store import ItemVectorStore, StoreMismatch

if TYPE_CHECKING:
    from ..collab.base import ItemScorer
    from ..settings import FusionSettings

__all__ = [
    "EMBEDDING",
    "CandidateRetriever",
    "CollaborativeModel",
    "Embedder",
    "EmbeddingError",
    "ItemVectorStore",
    "MiniLMEmbedder",
    "StoreMismatch",
    "CLASSIC",
    "build_scorers",
    "fuse",
    "make_embedder",
    "scorer_registry",
    "standardize",
]


CLASSIC = "classic"


def scorer_registry() -> dict[str, type[ItemScorer]]:
    """Every single collaborative scorer class, by its ``name``."""
    from ..collab import COMPONENTS

    return dict(COMPONENTS)


def build_scorers(fusion: FusionSettings) -> dict[str, ItemScorer]:
    """Unfitted scorers for every source with a non-zero fusion weight (``embedding`` aside).

    ``classic`` is the validation-tuned blend of order-aware classic scorers
    (:func:`promptrec.collab.classic_blend`); other names are single scorers built with
    ``fusion.params[name]``.
    """
    from ..collab import classic_blend

    registry = scorer_registry()
    scorers = {}
    for name, weight in fusion.weights.items():
        if name == EMBEDDING or weight == 0:
            continue
        if name == CLASSIC:
            scorers[name] = classic_blend()
        elif name in registry:
            scorers[name] = registry[name](**fusion.params.get(name, {}))
        else:
            known = ", ".join(sorted([EMBEDDING, CLASSIC, *registry]))
            raise ValueError(f"unknown fusion source {name!r}; known: {known}")
    return scorers
