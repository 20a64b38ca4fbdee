"""Run item scorers under Protocol A (full ranking, leave-last-out, history excluded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from promptrec.collab import ItemScorer, WeightedBlend, blend_scores

from .beyond import GroupContext, describe
from .metrics import DEFAULT_KS, evaluate_rankings, rank_of_target, top_k
from .splits import LeaveLastOutSplit, Stage

__all__ = ["classic_table", "evaluate_scorer", "evaluate_scores", "fit_and_score", "format_table"]


def fit_and_score(
    scorer: ItemScorer, split: LeaveLastOutSplit, stage: Stage, batch_size: int = 1024
) -> np.ndarray:
    """Fit ``scorer`` on the data available at ``stage`` and score every user's history.

    Validation: fit on all users' train items, history = train. Test: fit on train +
    validation items, history = train + validation item.

    Returns:
        Scores, shape (n_users, n_items).
    """
    histories, times = split.sequences(stage)
    scorer.fit(split.fit_matrix(stage), histories, times)
    return np.vstack(
        [
            scorer.score(histories[i : i + batch_size], times[i : i + batch_size])
            for i in range(0, len(histories), batch_size)
        ]
    )


def evaluate_scores(
    scores: np.ndarray, split: LeaveLastOutSplit, stage: Stage, ks: Sequence[int] = DEFAULT_KS,
    context: GroupContext | None = None,
) -> dict:
    """Protocol A metrics of full score rows (history items excluded from the ranking), with the
    catalog coverage and mean popularity rank of the top-10 lists.

    With ``context`` (the stage's :class:`~.beyond.GroupContext`) the popularity-bias figures, the
    ``intervals`` of every metric and the ``groups`` are added (:func:`~.beyond.describe`)."""
    histories, _ = split.sequences(stage)
    ranks = rank_of_target(scores, split.targets(stage), exclude=histories)
    lists = top_k(scores, 10, exclude=histories)
    if context is not None:
        described = describe(ranks, split.targets(stage), lists, context, ks=ks)
        return {**described["metrics"], "intervals": described["intervals"], "groups": described["groups"]}
    popularity = np.asarray(split.fit_matrix(stage).sum(axis=0)).ravel()
    return evaluate_rankings(ranks, ks, rec_lists=lists, n_items=split.n_items, popularity_counts=popularity)


def evaluate_scorer(
    scorer: ItemScorer, split: LeaveLastOutSplit, stage: Stage, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Fit, score and evaluate ``scorer`` at ``stage``; returns mean metrics."""
    return evaluate_scores(fit_and_score(scorer, split, stage), split, stage, ks)


def _cached_scores(
    scorer: ItemScorer, split: LeaveLastOutSplit, stage: Stage, cache: dict[str, np.ndarray]
) -> np.ndarray:
    """Scores at ``stage``; a blend reuses its components' cached scores (same result as
    fitting the blend, since a blend's score is the blend of its components' scores)."""
    if isinstance(scorer, WeightedBlend):
        parts = {n: _cached_scores(c, split, stage, cache) for n, c in scorer.components.items()}
        histories, _ = split.sequences(stage)
        return blend_scores(parts, scorer.config.weights, histories, scorer.config.normalization)
    key = f"{stage}:{scorer!r}"
    if key not in cache:
        cache[key] = fit_and_score(scorer, split, stage)
    return cache[key]


def classic_table(
    split: LeaveLastOutSplit,
    scorers: Mapping[str, ItemScorer],
    stages: Sequence[Stage] = ("valid", "test"),
    ks: Sequence[int] = DEFAULT_KS,
    contexts: Mapping[str, GroupContext] | None = None,
) -> list[dict]:
    """One row of Protocol A metrics per (scorer, stage); identical scorers are fit once.
    ``contexts`` (per stage) adds intervals and groups to every row (:func:`evaluate_scores`)."""
    rows: list[dict] = []
    for stage in stages:
        cache: dict[str, np.ndarray] = {}
        context = contexts.get(stage) if contexts else None
        for label, scorer in scorers.items():
            scores = _cached_scores(scorer, split, stage, cache)
            rows.append(
                {"model": label, "stage": stage, **evaluate_scores(scores, split, stage, ks, context)}
            )
    return rows


def format_table(
    rows: Sequence[Mapping[str, float | str]],
    metrics: Sequence[str] = ("R@10", "N@10", "R@20", "N@20"),
) -> str:
    """A Markdown table with one line per row: model, stage and the chosen metrics."""
    lines = [
        "| model | stage | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for row in rows:
        values = " | ".join(f"{row[m]:.4f}" for m in metrics)
        lines.append(f"| {row['model']} | {row['stage']} | {values} |")
    return "\n".join(lines)
