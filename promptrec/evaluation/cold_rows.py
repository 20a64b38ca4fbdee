"""Protocol D rows: hyperparameters chosen on the validation task, every row read once on the test
task, each figure with a 95% bootstrap interval over users (and paired differences where compared)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..knowledge.student import StudentConfig
from ..knowledge.transfer import TransferConfig, svd_item_factors
from ..retrieval.embeddings import normalize
from .cold_start import ColdItemTask, knn_scores, random_scores, student_vectors, task_metrics, transfer_scores
from .cold_users import ColdUserFold
from .intervals import bootstrap_interval, paired_difference

__all__ = ["SELECT_BY", "TextViews", "cold_item_rows", "knn_row", "select_student", "select_transfer",
           "summarize", "svd_foldin_row", "transfer_grid"]

SELECT_BY = ("new", "N@20")  # what every hyperparameter is chosen by, on the validation task


@dataclass
class TextViews:
    """The item vectors each row reads (rows of the 5-core catalog)."""

    raw: np.ndarray
    featured: np.ndarray
    has_features: np.ndarray
    student: dict = field(default_factory=dict)


def transfer_grid() -> list[TransferConfig]:
    """The candidate maps: SVD factors x ridge penalty, and EASE's penalty x ridge penalty."""
    svd = [TransferConfig(space="svd", factors=f, lambda_=lam) for f in (32, 64, 128, 256) for lam in (1, 3, 10, 30)]
    ease = [TransferConfig(space="ease", ease_lambda=e, lambda_=lam) for e in (100, 200, 500) for lam in (0.3, 1, 3, 10)]
    return svd + ease


def _value(metrics, by=SELECT_BY) -> float:
    return float(metrics[by[0]][by[1]].mean())


def select_transfer(task: ColdItemTask, vectors: np.ndarray, grid: Sequence[TransferConfig], spaces: dict,
                    new_vectors: np.ndarray | None = None, progress=None) -> tuple[TransferConfig, list[dict]]:
    """The grid entry with the best validation N@20 among new items (ties: the earlier entry)."""
    rows = []
    for config in grid:
        scores, _ = transfer_scores(task, vectors, config, new_vectors, spaces)
        rows.append({"config": config.model_dump(), "valid_N@20_new": _value(task_metrics(task, scores))})
        if progress:
            progress(1)
    best = max(range(len(rows)), key=lambda n: (rows[n]["valid_N@20_new"], -n))
    return grid[best], rows


def select_student(task: ColdItemTask, views: TextViews, lambdas: Sequence[float] = (0.1, 1, 10, 100)
                   ) -> tuple[StudentConfig, list[dict]]:
    """The student penalty with the best validation N@20 among new items of content kNN on its vectors."""
    rows, configs = [], [StudentConfig(lambda_=lam) for lam in lambdas]
    for config in configs:
        vectors, _ = student_vectors(task, views.raw, views.featured, views.has_features, config)
        rows.append({"config": config.model_dump(), "valid_N@20_new": _value(task_metrics(task, knn_scores(task, vectors)))})
    best = max(range(len(rows)), key=lambda n: (rows[n]["valid_N@20_new"], -n))
    return configs[best], rows


Scorer = Callable[[ColdItemTask], np.ndarray]


def cold_item_rows(task: ColdItemTask, views: TextViews, raw_map: TransferConfig, feature_map: TransferConfig,
                   student: StudentConfig | None, seed: int = 0, spaces: dict | None = None) -> dict[str, Scorer]:
    """The Protocol D rows, as scorers of a task (the test task once everything is chosen)."""
    spaces = {} if spaces is None else spaces
    rows: dict[str, Scorer] = {
        "random": lambda t: random_scores(t, seed),
        "content kNN, raw text": lambda t: knn_scores(t, views.raw),
        "content kNN, feature text": lambda t: knn_scores(t, views.featured),
        "transfer map, raw text": lambda t: transfer_scores(t, views.raw, raw_map, spaces=spaces)[0],
        "transfer map, feature text": lambda t: transfer_scores(t, views.featured, feature_map, spaces=spaces)[0],
    }
    if student is not None:
        def student_view(t):
            return student_vectors(t, views.raw, views.featured, views.has_features, student)[0]
        rows["distilled student, kNN"] = lambda t: knn_scores(t, student_view(t))
        rows["distilled student, transfer map"] = lambda t: transfer_scores(
            t, views.featured, feature_map, new_vectors=student_view(t), spaces=spaces)[0]
    return rows


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
