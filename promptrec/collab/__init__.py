"""Collaborative and sequential item scorers with one interface (:class:`ItemScorer`).

Every scorer is ``fit(matrix, sequences, times)`` on the data available at one moment and
then ``score(histories, times)`` for any batch of time-ordered histories (or
``score_one(history)`` for an ad-hoc user); item-item scorers also attribute a score to
history positions with ``contributions(history, item)``.
"""

from __future__ import annotations

from .base import ItemItemScorer, ItemScorer, ScorerConfig, recency_weights
from .blend import BlendConfig, WeightedBlend, blend_scores, normalize_scores
from .linear import LinearTransition, LinearTransitionConfig
from .neighbors import EASE, EASEConfig, ItemKNN, ItemKNNConfig
from .popularity import (
    Popularity,
    PopularityConfig,
    TimeLocalPopularity,
    TimeLocalPopularityConfig,
)
from .presets import (
    CLASSIC_BLEND_NORMALIZATION,
    CLASSIC_BLEND_PARAMS,
    CLASSIC_BLEND_WEIGHTS,
    COMPONENTS,
    build_blend,
    classic_blend,
    classic_scorers,
    make_scorer,
)
from .sequential import Transition, TransitionConfig

__all__ = [
    "CLASSIC_BLEND_NORMALIZATION",
    "CLASSIC_BLEND_PARAMS",
    "CLASSIC_BLEND_WEIGHTS",
    "COMPONENTS",
    "EASE",
    "BlendConfig",
    "EASEConfig",
    "ItemItemScorer",
    "ItemKNN",
    "ItemKNNConfig",
    "ItemScorer",
    "LinearTransition",
    "LinearTransitionConfig",
    "Popularity",
    "PopularityConfig",
    "ScorerConfig",
    "TimeLocalPopularity",
    "TimeLocalPopularityConfig",
    "Transition",
    "TransitionConfig",
    "WeightedBlend",
    "blend_scores",
    "build_blend",
    "classic_blend",
    "classic_scorers",
    "make_scorer",
    "normalize_scores",
    "recency_weights",
]
