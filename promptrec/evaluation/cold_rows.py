"""Protocol D rows: hyperparameters chosen on the validation task, every row read once on the test
task, each figure with a 95% bootstrap interval over users (and paired differences where compared)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..knowledge.item_text import joined_vectors
from ..knowledge.model_vectors import centred
from ..knowledge.student import StudentConfig
from ..knowledge.transfer import TransferConfig, svd_item_factors
from ..retrieval.embeddings import normalize
from .cold_start import (ColdItemTask, RowCache, knn_scores, random_scores, student_vectors, task_metrics,
                         transfer_scores)
from .cold_users import ColdUserFold
from .beyond import ACTIVITY, GroupContext, group_figures, list_figures, slot_share
from .intervals import bootstrap_interval, paired_difference

__all__ = ["SELECT_BY", "TextViews", "cold_beyond", "cold_item_rows", "knn_row", "model_vector_rows", "select_student",
           "select_transfer", "summarize", "svd_foldin_row", "task_context", "transfer_grid"]

SELECT_BY = ("new", "N@20")  # what every hyperparameter is chosen by, on the validation task


@dataclass
class TextViews:
    """The item vectors each row reads (rows of the 5-core catalog)."""

    raw: np.ndarray
    featured: np.ndarray
    has_features: np.ndarray
    raw_key: str = "raw"
    featured_key: str = "featured"


def transfer_grid() -> list[TransferConfig]:
    """The candidate maps: SVD factors x ridge penalty, and EASE's penalty x ridge penalty."""
    svd = [TransferConfig(space="svd", factors=f, lambda_=lam) for f in (32, 64, 128, 256) for lam in (1, 3, 10, 30)]
    ease = [TransferConfig(space="ease", ease_lambda=e, lambda_=lam) for e in (100, 200, 500) for lam in (0.3, 1, 3, 10)]
    return svd + ease


def _value(metrics, by=SELECT_BY) -> float:
    return float(metrics[by[0]][by[1]].mean())


def _cached(cache: RowCache | None, key: str, compute):
    return compute() if cache is None else cache.get(key, compute)


def select_transfer(task: ColdItemTask, vectors: np.ndarray, grid: Sequence[TransferConfig], spaces: dict,
                    progress=None, cache: RowCache | None = None, key: str = "") -> tuple[TransferConfig, list[dict]]:
    """The grid entry with the best validation N@20 among new items (ties: the earlier entry).
    ``key`` names the task and vectors for ``cache``."""
    rows = []
    for config in grid:
        metrics = _cached(cache, f"{key}|transfer|{config.model_dump_json()}",
                          lambda: task_metrics(task, transfer_scores(task, vectors, config, spaces=spaces)[0]))
        rows.append({"config": config.model_dump(), "valid_N@20_new": _value(metrics)})
        if progress:
            progress(1)
    best = max(range(len(rows)), key=lambda n: (rows[n]["valid_N@20_new"], -n))
    return grid[best], rows


def select_student(task: ColdItemTask, views: TextViews, lambdas: Sequence[float] = (0.1, 1, 10, 100),
                   cache: RowCache | None = None, key: str = "") -> tuple[StudentConfig, list[dict]]:
    """The student penalty with the best validation N@20 among new items of content kNN on its vectors."""
    rows, configs = [], [StudentConfig(lambda_=lam) for lam in lambdas]
    for config in configs:
        def compute(config=config):
            vectors, _ = student_vectors(task, views.raw, views.featured, views.has_features, config)
            return task_metrics(task, knn_scores(task, vectors))
        metrics = _cached(cache, f"{key}|student|{views.raw_key}|{views.featured_key}|{config.model_dump_json()}", compute)
        rows.append({"config": config.model_dump(), "valid_N@20_new": _value(metrics)})
    best = max(range(len(rows)), key=lambda n: (rows[n]["valid_N@20_new"], -n))
    return configs[best], rows


Scorer = Callable[[ColdItemTask], np.ndarray]


def cold_item_rows(task: ColdItemTask, views: TextViews, raw_map: TransferConfig, feature_map: TransferConfig,
                   student: StudentConfig | None, seed: int = 0, spaces: dict | None = None) -> dict[str, tuple[str, Scorer]]:
    """The Protocol D rows, as ``name -> (what the row depends on, scorer of a task)``."""
    spaces = {} if spaces is None else spaces
    raw, featured = views.raw_key, views.featured_key
    rows: dict[str, tuple[str, Scorer]] = {
        "random": (f"random|{seed}", lambda t: random_scores(t, seed)),
        "content kNN, raw text": (f"knn|{raw}", lambda t: knn_scores(t, views.raw)),
        "content kNN, feature text": (f"knn|{featured}", lambda t: knn_scores(t, views.featured)),
        "transfer map, raw text": (f"transfer|{raw}|{raw_map.model_dump_json()}",
                                   lambda t: transfer_scores(t, views.raw, raw_map, spaces=spaces)[0]),
        "transfer map, feature text": (f"transfer|{featured}|{feature_map.model_dump_json()}",
                                       lambda t: transfer_scores(t, views.featured, feature_map, spaces=spaces)[0]),
    }
    if student is not None:
        def student_view(t):
            return student_vectors(t, views.raw, views.featured, views.has_features, student)[0]
        tag = f"student|{raw}|{featured}|{student.model_dump_json()}"
        rows["distilled student, kNN"] = (f"{tag}|knn", lambda t: knn_scores(t, student_view(t)))
        rows["distilled student, transfer map"] = (f"{tag}|transfer|{feature_map.model_dump_json()}", lambda t: transfer_scores(
            t, views.featured, feature_map, new_vectors=student_view(t), spaces=spaces)[0])
    return rows


def model_vector_rows(valid: ColdItemTask, raw: np.ndarray, model: np.ndarray, key: str, grid: Sequence[TransferConfig],
                      spaces: dict, test_spaces: dict, cache: RowCache | None = None, valid_key: str = "",
                      progress=None) -> tuple[dict[str, tuple[str, Scorer]], dict]:
    """Rows on the model's own item vectors (:class:`~promptrec.knowledge.model_vectors.ModelVectors`):
    content kNN, a transfer map on them, and a transfer map on them beside the raw-text vector
    (:func:`joined_vectors`). A task's model vectors are centred on its warm items (:func:`centred`);
    both maps are chosen on ``valid``. Returns ``(rows, selection)``; ``key`` names the model vectors."""

    def alone(t: ColdItemTask) -> np.ndarray:
        return centred(model, t.warm)

    def beside(t: ColdItemTask) -> np.ndarray:
        return joined_vectors(raw, centred(model, t.warm))

    model_map, model_rows = select_transfer(valid, alone(valid), grid, spaces, progress, cache, f"{valid_key}|{key}")
    both_map, both_rows = select_transfer(valid, beside(valid), grid, spaces, progress, cache, f"{valid_key}|raw+{key}")
    rows: dict[str, tuple[str, Scorer]] = {
        "content kNN, model vectors": (f"knn|{key}", lambda t: knn_scores(t, alone(t))),
        "transfer map, model vectors": (f"transfer|{key}|{model_map.model_dump_json()}",
                                        lambda t: transfer_scores(t, alone(t), model_map, spaces=test_spaces)[0]),
        "transfer map, raw + model vectors": (f"transfer|raw+{key}|{both_map.model_dump_json()}",
                                              lambda t: transfer_scores(t, beside(t), both_map, spaces=test_spaces)[0]),
    }
    selection = {"model_map": model_map.model_dump(), "raw_model_map": both_map.model_dump(),
                 "grid_model": model_rows, "grid_raw_model": both_rows}
    return rows, selection


def summarize(per_user: Mapping[str, Mapping[str, np.ndarray]], n_boot: int = 1000, seed: int = 0) -> dict:
    """``{ranking: {metric: {"mean", "lo", "hi", "n"}}}`` from per-user values."""
    return {ranking: {metric: bootstrap_interval(values, n_boot, seed) for metric, values in metrics.items()}
            for ranking, metrics in per_user.items()}


def compare(a: Mapping[str, Mapping[str, np.ndarray]], b: Mapping[str, Mapping[str, np.ndarray]],
            n_boot: int = 1000, seed: int = 0) -> dict:
    """Paired differences ``a - b`` over the same users, per ranking and metric."""
    return {ranking: {metric: paired_difference(a[ranking][metric], b[ranking][metric], n_boot, seed)
                      for metric in a[ranking]} for ranking in a}


# ----- cold-user rows that read vectors or the transfer map's space -----
def knn_row(vectors: np.ndarray):
    """Content kNN for a cut history: cosine to the mean of its item vectors."""
    unit = normalize(np.asarray(vectors, dtype=np.float32))

    def fit(fold: ColdUserFold):
        return lambda histories, times: normalize(np.vstack([unit[h].mean(axis=0) for h in histories])) @ unit.T
    return fit


def svd_foldin_row(factors: int, seed: int = 0):
    """The transfer map's user side: a user is the sum of their items' SVD factors (PureSVD fold-in)."""
    def fit(fold: ColdUserFold):
        basis = svd_item_factors(fold.matrix, factors, seed)
        return lambda histories, times: np.vstack([basis[h].sum(axis=0) for h in histories]) @ basis.T
    return fit


# ----- beyond accuracy of the cold-item rows -----
def task_context(task: ColdItemTask, seed: int = 0) -> GroupContext:
    """Popularity (every user's warm interactions: a new item has none, so it is in the tail tier) and activity
    (the scored users' warm history lengths, in terciles) of a cold-item task."""
    popularity = np.asarray(task.matrix.sum(axis=0)).ravel()
    lengths = np.array([len(h) for h in task.histories], dtype=np.float64)
    return GroupContext.for_stage(popularity, lengths, seed)


def cold_beyond(task: ColdItemTask, results: Mapping[str, Mapping[str, np.ndarray]], context: GroupContext,
                n_boot: int = 1000) -> dict:
    """Beyond accuracy of one row (``results`` from :func:`~.cold_start.row_results`): the popularity bias of its
    top lists among all items (Gini of exposure, coverage, long-tail share, average popularity, and
    ``new_share``, the share of list slots given to new items), and N@20 among new and among all items by user
    activity; each with its 95% interval over users."""
    padded = np.asarray(results["lists"]["top"])
    lists = [row[row >= 0] for row in padded]
    figures, intervals = list_figures(lists, context, n_boot)
    shown = padded >= 0
    figures["new_share"], intervals["new_share"] = slot_share((np.isin(padded, task.new) & shown).sum(axis=1),
                                                              shown.sum(axis=1), context.seed, n_boot)
    activity = group_figures({"N@20 new": results["new"]["N@20"], "N@20 all": results["all"]["N@20"]},
                             context.activity, ACTIVITY, context.seed, n_boot)
    return {"lists": figures, "intervals": intervals, "activity": activity,
            "activity_cuts": [float(c) for c in context.activity_cuts], "k": int(padded.shape[1])}
