"""Retrieval: offline embeddings, the Chroma item store, collaborative evidence, fusion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .collaborative import CollaborativeModel
from .embeddings import Embedder, EmbeddingError, MiniLMEmbedder, make_embedder
from .fusion import fuse, standardize
from .retriever import COLD, EMBEDDING, CandidateRetriever
from .store import ItemVectorStore, StoreMismatch

if TYPE_CHECKING:
    from ..collab.base import ItemScorer
    from ..settings import FusionSettings

__all__ = [
    "COLD",
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


def _scorer(scorer_class: type[ItemScorer], name: str, params: dict) -> ItemScorer:
    """A scorer built from ``fusion.params[name]``; bad hyperparameters are a ConfigError."""
    from pydantic import ValidationError

    from ..settings_errors import config_error

    try:
        return scorer_class(**params)
    except ValidationError as err:
        problem = str(config_error(err, scorer_class.config_class)).removeprefix("invalid setting ")
        raise ConfigError(f"invalid setting PROMPTREC_FUSION__PARAMS ({name}): {problem}") from None


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
        if name in (EMBEDDING, COLD) or weight == 0:
            continue
        if name == CLASSIC:
            scorers[name] = classic_blend()
        elif name in registry:
            scorers[name] = _scorer(registry[name], name, fusion.params.get(name, {}))
        else:
            known = ", ".join(sorted([EMBEDDING, COLD, CLASSIC, *registry]))
            raise ConfigError(f"unknown fusion source {name!r} in PROMPTREC_FUSION__WEIGHTS; known: {known}")
    return scorers
