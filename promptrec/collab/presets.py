"""Named scorer configurations: the protocol's reference models and the tuned classic blend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import ItemScorer
from .blend import WeightedBlend
from .linear import LinearTransition
from .neighbors import EASE, ItemKNN
from .popularity import Popularity, TimeLocalPopularity
from .sequential import Transition

__all__ = [
    "CLASSIC_BLEND_NORMALIZATION",
    "CLASSIC_BLEND_PARAMS",
    "CLASSIC_BLEND_WEIGHTS",
    "COMPONENTS",
    "build_blend",
    "classic_blend",
    "classic_scorers",
    "make_scorer",
]

COMPONENTS: dict[str, type[ItemScorer]] = {
    cls.name: cls
    for cls in (Popularity, TimeLocalPopularity, ItemKNN, EASE, Transition, LinearTransition)
}

# Selected by promptrec.evaluation.tuning.tune_classic_blend (3 validation folds, N@10) on
# ml-latest-small under Protocol A; rerun with `python eval/classic_baselines.py --tune`.
CLASSIC_BLEND_PARAMS: dict[str, dict[str, Any]] = {
    "itemknn": {"scorer": "itemknn", "half_life": 2.0},
    "ease": {"scorer": "ease", "lambda_": 500.0, "half_life": 2.0},
    "ease_global": {"scorer": "ease", "lambda_": 200.0},
    "transition": {
        "scorer": "transition",
        "window": 20,
        "distance_decay": 0.9,
        "backward_weight": 0.5,
        "half_life": 1.5,
    },
    "linear_transition": {
        "scorer": "linear_transition",
        "lambda_": 100.0,
        "context": 30,
        "half_life": 6.0,
        "horizon": 5,
    },
}
CLASSIC_BLEND_WEIGHTS: dict[str, float] = {
    "itemknn": 2.0,
    "ease": 0.1,
    "ease_global": 1.0,
    "transition": 2.0,
    "linear_transition": 2.0,
}
CLASSIC_BLEND_NORMALIZATION = "zscore"


def make_scorer(name: str, **params: Any) -> ItemScorer:
    """Build a scorer by its ``name`` (a key of :data:`COMPONENTS`) with hyperparameters."""
    try:
        scorer_class = COMPONENTS[name]
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; known: {sorted(COMPONENTS)}") from None
    return scorer_class(**params)


def build_blend(
    params: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float], normalization: str
) -> WeightedBlend:
    """An unfitted blend from ``{label: {"scorer": COMPONENTS key, **hyperparameters}}``;
    labels with a zero weight are left out."""
    components = {}
    for label, weight in weights.items():
        if weight:
            spec = dict(params[label])
            components[label] = make_scorer(spec.pop("scorer"), **spec)
    used = {label: w for label, w in weights.items() if w}
    return WeightedBlend(components, weights=used, normalization=normalization)


def classic_blend() -> WeightedBlend:
    """The validation-tuned blend of order-aware classic scorers (unfitted)."""
    return build_blend(CLASSIC_BLEND_PARAMS, CLASSIC_BLEND_WEIGHTS, CLASSIC_BLEND_NORMALIZATION)


def classic_scorers() -> dict[str, ItemScorer]:
    """Every classic scorer of the baseline table, by label (unfitted)."""
    scorers: dict[str, ItemScorer] = {
        "Pop": Popularity(),
        "ItemKNN": ItemKNN(),
        "EASE(200)": EASE(lambda_=200.0),
    }
    for label, spec in CLASSIC_BLEND_PARAMS.items():
        settings = {k: v for k, v in spec.items() if k != "scorer"}
        scorer = make_scorer(spec["scorer"], **settings)
        if all(repr(scorer) != repr(known) for known in scorers.values()):
            scorers[f"{label}[tuned]"] = scorer
    scorers["TimePop(90d)"] = TimeLocalPopularity(bandwidth_days=90.0)
    scorers["ClassicBlend"] = classic_blend()
    return scorers
