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
    "build_scorers",
    "fuse",
    "make_embedder",
    "scorer_registry",
    "standardize",
]


def scorer_registry() -> dict[str, type[ItemScorer]]:
    """Every collaborative scorer class, by its ``name``."""
    import importlib
    import pkgutil

    from .. import collab
    from ..collab.base import ItemScorer

    registry: dict[str, type[ItemScorer]] = {}
    for module in pkgutil.iter_modules(collab.__path__):
        namespace = importlib.import_module(f"{collab.__name__}.{module.name}")
        for value in vars(namespace).values():
            if isinstance(value, type) and issubclass(value, ItemScorer) and "name" in vars(value):
                registry[value.name] = value
    return registry


def build_scorers(fusion: FusionSettings) -> dict[str, ItemScorer]:
    """Unfitted scorers for every source with a non-zero fusion weight (``embedding`` aside)."""
    registry = scorer_registry()
    scorers = {}
    for name, weight in fusion.weights.items():
        if name == EMBEDDING or weight == 0:
            continue
        if name not in registry:
            raise ValueError(f"unknown fusion source {name!r}; known: {', '.join(sorted([EMBEDDING, *registry]))}")
        scorers[name] = registry[name](**fusion.params.get(name, {}))
    return scorers
