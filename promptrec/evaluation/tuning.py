"""Select classic scorer hyperparameters and blend weights on validation folds only.

The folds are the split's validation stage plus the validation stages of
:func:`~promptrec.evaluation.splits.truncate_last` (each user's earlier training items as
targets), so no test item is ever read. Each component gets a small grid search; then the
blend weights and normalisation get a coordinate search on the stored validation scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptrec.collab import COMPONENTS, WeightedBlend, build_blend, normalize_scores
from promptrec.collab.base import ItemScorer

from .classic import fit_and_score
from .metrics import ndcg_at_k, rank_of_target, recall_at_k
from .splits import LeaveLastOutSplit, truncate_last

__all__ = [
    "DEFAULT_GRIDS",
    "DEFAULT_WEIGHT_STEPS",
    "TuningResult",
    "tune_classic_blend",
    "validation_folds",
]

Grid = Sequence[Mapping[str, Any]]

DEFAULT_GRIDS: dict[str, tuple[str, Grid]] = {
    "popularity": ("popularity", [{}]),
    "timepop": ("timepop", [{"bandwidth_days": d} for d in (30.0, 90.0, 365.0)]),
    "itemknn": ("itemknn", [{"half_life": h} for h in (1.0, 2.0, 4.0)]),
    "ease": (
        "ease",
        [{"lambda_": lam, "half_life": h} for lam in (200.0, 500.0) for h in (2.0, 4.0)],
    ),
    "ease_global": ("ease", [{"lambda_": lam} for lam in (200.0, 500.0)]),
    "transition": (
        "transition",
        [
            {"window": w, "distance_decay": d, "backward_weight": b, "half_life": h}
            for w, d in ((10, 0.8), (20, 0.9))
            for b in (0.25, 0.5)
            for h in (1.5, 2.0)
        ],
    ),
    "linear_transition": (
        "linear_transition",
        [
            {"lambda_": 100.0, "context": c, "half_life": h, "horizon": hz}
            for c, h, hz in ((10, 2.0, 3), (20, 4.0, 5), (30, 6.0, 5))
        ],
    ),
}
DEFAULT_WEIGHT_STEPS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


def validation_folds(split: LeaveLastOutSplit, n_folds: int) -> list[LeaveLastOutSplit]:
    """``n_folds`` splits whose validation stages hold out different items of each user."""
    return [split] + [truncate_last(split, n) for n in range(1, n_folds)]


def _fold_ranks(scores: np.ndarray, fold: LeaveLastOutSplit) -> np.ndarray:
    return rank_of_target(scores, fold.valid_target, exclude=fold.sequences("valid")[0])


def _metric(ranks: np.ndarray, k: int) -> tuple[float, float]:
    return float(np.mean(ndcg_at_k(ranks, k))), float(np.mean(recall_at_k(ranks, k)))


def _split_params(scorer_class: type[ItemScorer], params: Mapping[str, Any]) -> tuple[dict, dict]:
    fit = {k: v for k, v in params.items() if k not in scorer_class.score_params}
    return fit, {k: v for k, v in params.items() if k in scorer_class.score_params}


def _grid_ranks(
    scorer_class: type[ItemScorer], grid: Grid, folds: Sequence[LeaveLastOutSplit]
) -> list[np.ndarray]:
    """Validation ranks (all folds concatenated) of each grid point; one fit per fold and
    distinct fit-time setting, reused for the scoring-time variants."""
    ranks: list[list[np.ndarray]] = [[] for _ in grid]
    groups: dict[tuple, list[int]] = {}
    for i, params in enumerate(grid):
        fit_params, _ = _split_params(scorer_class, params)
        groups.setdefault(tuple(sorted(fit_params.items())), []).append(i)
    for key, members in groups.items():
        for fold in folds:
            fitted = scorer_class(**dict(key))
            fitted.fit(fold.fit_matrix("valid"), *fold.sequences("valid"))
            for i in members:
                variant = fitted.with_score_params(**_split_params(scorer_class, grid[i])[1])
                ranks[i].append(_fold_ranks(variant.score(*fold.sequences("valid")), fold))
    return [np.concatenate(r) for r in ranks]


@dataclass
class TuningResult:
    """What the validation search chose.

    Attributes:
        params: Per component label, ``{"scorer": COMPONENTS key, **hyperparameters}``.
        component_scores: Validation (N@k, R@k) of each chosen component alone.
        weights: Blend weight per component.
        normalization: Per-user normalisation of the blend.
        validation: Validation (N@k, R@k) of the blend over all folds.
        n_folds: Validation folds used.
        log: One line per evaluated setting.
    """

    params: dict[str, dict[str, Any]]
    component_scores: dict[str, tuple[float, float]]
    weights: dict[str, float]
    normalization: str
    validation: tuple[float, float]
    n_folds: int
    log: list[str] = field(default_factory=list)

    def build(self) -> WeightedBlend:
        """An unfitted blend with the chosen components, parameters and weights."""
        return build_blend(self.params, self.weights, self.normalization)


def _select_components(
    grids: Mapping[str, tuple[str, Grid]],
    folds: Sequence[LeaveLastOutSplit],
    k: int,
    note: Callable[[str], None],
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[float, float]]]:
    """Best setting per label by validation N@k; labels sharing a scorer share its fits."""
    by_scorer: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for label, (scorer_name, grid) in grids.items():
        by_scorer.setdefault(scorer_name, []).extend((label, p) for p in grid)
    values: dict[str, list[tuple[Mapping[str, Any], tuple[float, float]]]] = {}
    for scorer_name, points in by_scorer.items():
        ranks = _grid_ranks(COMPONENTS[scorer_name], [p for _, p in points], folds)
        for (label, setting), r in zip(points, ranks, strict=True):
            value = _metric(r, k)
            values.setdefault(label, []).append((setting, value))
            note(f"{label} {dict(setting)} N@{k}={value[0]:.4f} R@{k}={value[1]:.4f}")
    params, solo = {}, {}
    for label, (scorer_name, _) in grids.items():
        setting, solo[label] = max(values[label], key=lambda v: v[1][0])
        params[label] = {"scorer": scorer_name, **setting}
    return params, solo


def _search_weights(
    scores: Mapping[str, Sequence[np.ndarray]],
    start: str,
    folds: Sequence[LeaveLastOutSplit],
    k: int,
    method: str,
    weight_steps: Sequence[float],
    rounds: int,
    note: Callable[[str], None],
) -> tuple[dict[str, float], tuple[float, float]]:
    """Coordinate ascent on blend weights from ``{start: 1}``; first best kept on ties."""
    norm = {
        n: [
            normalize_scores(s, f.sequences("valid")[0], method)
            for s, f in zip(per_fold, folds, strict=True)
        ]
        for n, per_fold in scores.items()
    }

    def evaluate(weights: Mapping[str, float]) -> tuple[float, float]:
        ranks = [
            _fold_ranks(sum(w * norm[n][j] for n, w in weights.items() if w), fold)
            for j, fold in enumerate(folds)
        ]
        return _metric(np.concatenate(ranks), k)

    weights = {n: (1.0 if n == start else 0.0) for n in scores}
    value = evaluate(weights)
    for _ in range(rounds):
        improved = False
        for n in scores:
            for step in weight_steps:
                trial = {**weights, n: step}
                if step == weights[n] or not any(trial.values()):
                    continue
                trial_value = evaluate(trial)
                if trial_value[0] > value[0] + 1e-9:
                    weights, value, improved = trial, trial_value, True
        note(f"blend[{method}] {weights} N@{k}={value[0]:.4f} R@{k}={value[1]:.4f}")
        if not improved:
            break
    return weights, value


def tune_classic_blend(
    split: LeaveLastOutSplit,
    grids: Mapping[str, tuple[str, Grid]] = DEFAULT_GRIDS,
    n_folds: int = 3,
    k: int = 10,
    weight_steps: Sequence[float] = DEFAULT_WEIGHT_STEPS,
    normalizations: Sequence[str] = ("zscore", "minmax"),
    rounds: int = 3,
    progress: Callable[[str], None] | None = None,
) -> TuningResult:
    """Grid-search each component, then coordinate-search the blend, on validation only.

    Args:
        split: Protocol A split (its test targets are never read).
        grids: Per component label, ``(COMPONENTS key, settings to try)``.
        n_folds: Validation folds (see :func:`validation_folds`).
        k: Cut-off of the objective, NDCG@k averaged over every fold's users.
        weight_steps: Values tried for each weight in the coordinate search.
        normalizations: Per-user normalisations tried for the blend.
        rounds: Passes of the coordinate search.
        progress: Called with each log line.

    Returns:
        The selection and its validation figures.
    """
    folds = validation_folds(split, n_folds)
    log: list[str] = []

    def note(line: str) -> None:
        log.append(line)
        if progress is not None:
            progress(line)

    params, solo = _select_components(grids, folds, k, note)
    scores = {}
    for label, spec in params.items():
        settings = {key: v for key, v in spec.items() if key != "scorer"}
        scores[label] = [
            fit_and_score(COMPONENTS[spec["scorer"]](**settings), f, "valid") for f in folds
        ]
    start = max(solo, key=lambda n: solo[n][0])
    best = None
    for method in normalizations:
        weights, value = _search_weights(
            scores, start, folds, k, method, weight_steps, rounds, note
        )
        if best is None or value[0] > best[1][0]:
            best = (weights, value, method)
    weights, value, method = best
    return TuningResult(params, solo, weights, method, value, n_folds, log)
