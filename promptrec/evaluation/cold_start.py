"""Protocol D, strict cold-start items (docs/evaluation.md).

On the Protocol A 5-core data, a seeded ``fraction`` of the items are *new*: all their interactions
are removed from what any model is fitted on (and, since users create tags, their tags too: every
item is described by title + genres, plus model features where a row uses them). Each user with at
least one new item and one remaining ("warm") item is scored with their warm items as history and
all of their new items as targets, ranked

- among the new items only (``new``), and
- among all items of the catalog, their warm history excluded (``all``).

Hyperparameters are chosen on a validation task built the same way inside the warm items: a second
seeded ``fraction`` of the warm items become new, the test's new items are removed entirely, and
nothing about the test's new items is read.

Multi-target metrics (``targets`` = the user's new items, ``n = len(targets)``):
``R@K = hits in the top K / min(K, n)``; ``N@K = DCG@K / IDCG@K`` with ``IDCG`` over ``min(K, n)`` hits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..collab.base import interaction_matrix
from ..data import Dataset, Item
from ..knowledge import FeatureStore, feature_text
from ..knowledge.item_text import joined_vectors, new_item_view
from ..knowledge.student import DistilledStudent, StudentConfig
from ..knowledge.transfer import TransferConfig, TransferMap
from ..retrieval.embeddings import normalize
from ..settings import Settings
from ..state import DatasetState
from .metrics import top_k
from .splits import LeaveLastOutSplit

__all__ = [
    "ColdItemTask",
    "cold_item_tasks",
    "cold_texts",
    "RowCache",
    "embed_cached",
    "texts_digest",
    "feature_store",
    "joined_vectors",
    "knn_scores",
    "knowledge_texts",
    "list_metrics",
    "multi_target_metrics",
    "ranked_lists",
    "random_scores",
    "student_vectors",
    "task_metrics",
    "transfer_scores",
]

KS = (10, 20)


@dataclass
class ColdItemTask:
    """One cold-item task over the 5-core item indices.

    Attributes:
        n_items: Catalog size (all 5-core items; items neither warm nor new are never ranked).
        warm: Items with interactions (what models are fitted on).
        new: Items without any (the targets' pool).
        users: User ids scored.
        histories: Per scored user, warm items in time order.
        targets: Per scored user, their new items.
        matrix: Binary user x item matrix of every user's warm interactions (all users, for fitting).
        all_histories: Every user's warm items in time order (rows of ``matrix``).
    """

    n_items: int
    warm: np.ndarray
    new: np.ndarray
    users: list[str]
    histories: list[np.ndarray]
    targets: list[np.ndarray]
    matrix: sp.csr_matrix
    all_histories: list[np.ndarray]

    @property
    def n_users(self) -> int:
        return len(self.users)


def _sequences(split: LeaveLastOutSplit) -> list[np.ndarray]:
    return [np.append(split.train[u], [split.valid_target[u], split.test_target[u]]) for u in range(split.n_users)]


def _task(split: LeaveLastOutSplit, sequences: list[np.ndarray], new: np.ndarray, gone: np.ndarray) -> ColdItemTask:
    is_new = np.zeros(split.n_items, dtype=bool)
    is_new[new] = True
    out = np.zeros(split.n_items, dtype=bool)
    out[gone] = True
    warm = np.flatnonzero(~is_new & ~out)
    all_histories = [s[~is_new[s] & ~out[s]] for s in sequences]
    users, histories, targets = [], [], []
    for u, seq in enumerate(sequences):
        hist, tgt = all_histories[u], np.unique(seq[is_new[seq]])
        if len(hist) and len(tgt):
            users.append(split.users[u])
            histories.append(hist)
            targets.append(tgt)
    return ColdItemTask(split.n_items, warm, np.sort(new), users, histories, targets,
                        interaction_matrix(all_histories, split.n_items), all_histories)


def cold_item_tasks(split: LeaveLastOutSplit, fraction: float = 0.1, seed: int = 0) -> tuple[ColdItemTask, ColdItemTask]:
    """The ``(validation, test)`` tasks: test's new items are a seeded ``fraction`` of all items;
    validation's are the same fraction of the catalog drawn from the rest, with test's removed."""
    if not 0 < fraction < 0.5:
        raise ValueError(f"fraction must be in (0, 0.5), got {fraction}")
    rng = np.random.default_rng(seed)
    n_new = max(1, round(fraction * split.n_items))
    order = rng.permutation(split.n_items)
    test_new, valid_new = np.sort(order[:n_new]), np.sort(order[n_new : 2 * n_new])
    sequences = _sequences(split)
    return _task(split, sequences, valid_new, test_new), _task(split, sequences, test_new, np.array([], dtype=np.int64))


# ----- texts and vectors -----
def feature_store(settings: Settings, dataset: Dataset, model_id: str | None) -> tuple[FeatureStore | None, str | None]:
    """The per-model feature store named, or the fullest one there is (None when there is none)."""
    state = DatasetState.for_dataset(settings.state_dir, dataset)
    if model_id:
        return FeatureStore(state.features_for(model_id, settings.features.style)), model_id
    files = sorted(p for p in (state.root / "features").glob("*.jsonl") if not p.name.endswith(".bare.jsonl"))
    stores = [FeatureStore(path) for path in files]
    stores = [s for s in stores if len(s)]
    if not stores:
        return None, None
    best = max(stores, key=len)
    ids = {r.model_id for r in best.records().values()}
    return best, ", ".join(sorted(ids))


def cold_texts(items: Sequence[Item], features: FeatureStore | None = None, bare: FeatureStore | None = None,
               bare_ids: set[str] = frozenset()) -> tuple[list[str], list[str], np.ndarray]:
    """Every item as a new item is described: title + genres only (user tags dropped), and the same
    plus the model's features. Items in ``bare_ids`` (the new items of the tasks) take their features from
    ``bare`` (made from title + genres only, as a new item's would be: :func:`bare_item`), never from
    ``features`` (made with the user tags). Returns ``(raw_texts, feature_texts, has_features)``."""
    raw, featured, has = [], [], []
    for item in items:
        known = bare_item(item)
        found = _features_of(item, features, bare, bare_ids)
        raw.append(known.text())
        featured.append(feature_text(known, found))
        has.append(found is not None)
    return raw, featured, np.array(has, dtype=bool)


def knowledge_texts(items: Sequence[Item], features: FeatureStore | None = None, bare: FeatureStore | None = None,
                    bare_ids: set[str] = frozenset()) -> list[str]:
    """The model's knowledge of each item alone (its features' text, from ``bare`` for the new items as in
    :func:`cold_texts`); an item without features gets its title + genres, so its vector is its raw one."""
    out = []
    for item in items:
        found = _features_of(item, features, bare, bare_ids)
        out.append(found.text() if found is not None else bare_item(item).text())
    return out


def _features_of(item: Item, features: FeatureStore | None, bare: FeatureStore | None, bare_ids: set[str]):
    """An item's features: from ``bare`` for the new items (``bare_ids``), else from ``features``."""
    source = bare if item.item_id in bare_ids else features
    return source.get(item.item_id) if source is not None else None


def bare_item(item: Item) -> Item:
    """The item as a new item is known: its catalog text without user tags (title and genres here);
    the product's cold source reads the same view (:func:`promptrec.knowledge.item_text.new_item_view`)."""
    return new_item_view(item)


def bare_store(store: FeatureStore | None) -> FeatureStore | None:
    """Beside a feature store, the one its model filled from bare items (``eval/knowledge_job.py
    --protocol-d``: ``DatasetState.features_for(..., bare=True)``); None when there is none."""
    if store is None:
        return None
    path = store.path.with_name(store.path.name[: -len(".jsonl")] + ".bare.jsonl")
    return FeatureStore(path) if path.exists() else None


def texts_digest(embedder, texts: list[str]) -> str:
    """Names a set of vectors: the embedder and every text, in order."""
    digest = hashlib.sha256(embedder.name.encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:20]


class RowCache:
    """Per-user metrics of finished rows, as ``.npz`` files under ``folder`` named by a hash of
    everything the row depends on (a rerun recomputes only rows whose inputs changed; no pickle)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def get(self, key: str, compute):
        path = self.folder / f"row-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                flat = {name: data[name] for name in data.files}
            nested: dict = {}
            for name, values in flat.items():
                outer, _, inner = name.partition("|")
                nested.setdefault(outer, {})[inner] = values
            return nested
        result = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{f"{outer}|{inner}": v for outer, by in result.items() for inner, v in by.items()})
        tmp.replace(path)
        return result


def embed_cached(embedder, texts: list[str], folder: Path, progress=None) -> np.ndarray:
    """Vectors of ``texts``, cached as ``.npy`` under ``folder`` by a hash of the embedder and the texts."""
    path = Path(folder) / f"vectors-{texts_digest(embedder, texts)}.npy"
    if path.exists():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == (len(texts), embedder.dimension):
            return vectors
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.npy")  # what an interrupted run had read, continued from
    out = []
    if partial.exists():
        done = np.load(partial, allow_pickle=False)
        if done.ndim == 2 and done.shape[1] == embedder.dimension and len(done) <= len(texts):
            out.append(done)
    start = len(out[0]) if out else 0
    if progress and start:
        progress(start)
    for start in range(start, len(texts), 256):
        out.append(np.asarray(embedder.embed(texts[start : start + 256]), dtype=np.float32))
        if start + 256 < len(texts):
            _save_npy(partial, np.vstack(out))
        if progress:
            progress(len(texts[start : start + 256]))
    vectors = np.vstack(out) if out else np.zeros((0, embedder.dimension), dtype=np.float32)
    _save_npy(path, vectors)
    partial.unlink(missing_ok=True)
    return vectors


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array, allow_pickle=False)
    tmp.replace(path)


# ----- scorers: score rows over the whole catalog (items neither warm nor new are never ranked) -----
def random_scores(task: ColdItemTask, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((task.n_users, task.n_items))


def knn_scores(task: ColdItemTask, vectors: np.ndarray) -> np.ndarray:
    """Cosine of each item's vector to the mean of the user's warm history vectors."""
    vectors = normalize(np.asarray(vectors, dtype=np.float32))
    users = normalize(np.vstack([vectors[h].mean(axis=0) for h in task.histories]))
    return users @ vectors.T


def transfer_scores(task: ColdItemTask, fit_vectors: np.ndarray, config: TransferConfig,
                    new_vectors: np.ndarray | None = None, spaces: dict | None = None) -> tuple[np.ndarray, TransferMap]:
    """A :class:`TransferMap` fitted on the warm items (``fit_vectors`` rows of the warm items) scores
    the new items from their text (``new_vectors`` rows, default ``fit_vectors``); the warm items are
    scored by the collaborative space itself (PureSVD or EASE). ``spaces`` keeps fitted spaces across calls."""
    new_vectors = fit_vectors if new_vectors is None else new_vectors
    warm_matrix = task.matrix[:, task.warm]
    fitted = TransferMap.fit(warm_matrix, fit_vectors[task.warm], [str(i) for i in task.warm], config,
                             spaces=spaces)
    position = np.full(task.n_items, -1)
    position[task.warm] = np.arange(len(task.warm))
    users = fitted.user_vectors([position[h] for h in task.histories])
    scores = np.full((task.n_users, task.n_items), -np.inf)
    scores[:, task.warm] = fitted.warm_scores(users)
    scores[:, task.new] = fitted.score(users, new_vectors[task.new])
    return scores, fitted


def student_vectors(task: ColdItemTask, raw: np.ndarray, featured: np.ndarray, has_features: np.ndarray,
                    config: StudentConfig) -> tuple[np.ndarray, DistilledStudent]:
    """Feature-text vectors where a warm item has features; the student's prediction for every new
    item (and any warm item without features), trained on the featurized warm items only."""
    train = task.warm[has_features[task.warm]]
    if len(train) < 2:
        raise ValueError(f"the distilled student needs featurized warm items; {len(train)} have features")
    student = DistilledStudent.fit(raw[train], featured[train], config)
    out = np.array(featured, dtype=np.float32, copy=True)
    predict = np.setdiff1d(np.arange(task.n_items), train)
    out[predict] = student.predict(raw[predict])
    return out, student


# ----- metrics -----
def multi_target_metrics(scores: np.ndarray, targets: Sequence[np.ndarray], candidates: np.ndarray,
                         exclude: Sequence[np.ndarray] | None = None, ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """Per-user ``R@K`` and ``N@K`` of all-targets rankings over ``candidates`` (module doc for the definitions).

    Ties are broken by the lower item index (the rule of :mod:`promptrec.evaluation.metrics`)."""
    return list_metrics(ranked_lists(scores, candidates, max(ks), exclude), targets, ks)


def ranked_lists(scores: np.ndarray, candidates: np.ndarray, k: int,
                 exclude: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Each row's top ``k`` among ``candidates`` (``exclude``d items left out), as item indices (rows x k; -1 pads a
    shorter list); ties by the lower item index."""
    masked = np.full(scores.shape, -np.inf)
    masked[:, candidates] = scores[:, candidates]
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    for u, ranked in enumerate(top_k(masked, k, exclude=exclude)):
        out[u, : len(ranked)] = ranked
    return out


def list_metrics(lists: np.ndarray, targets: Sequence[np.ndarray], ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """Per-user multi-target ``R@K`` and ``N@K`` of ranked ``lists`` (rows of item indices, -1 padding)."""
    discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))
    out = {f"{m}@{k}": np.zeros(len(targets)) for k in ks for m in ("R", "N")}
    for u, (ranked, tgt) in enumerate(zip(lists, targets)):
        hit = np.isin(ranked, tgt) & (ranked >= 0)
        for k in ks:
            ideal = min(k, len(tgt))
            if ideal == 0:
                continue
            out[f"R@{k}"][u] = hit[:k].sum() / ideal
            out[f"N@{k}"][u] = (hit[:k] * discounts[: len(hit[:k])]).sum() / discounts[:ideal].sum()
    return out


def task_metrics(task: ColdItemTask, scores: np.ndarray, ks: Sequence[int] = KS) -> dict[str, dict[str, np.ndarray]]:
    """``{"new": ..., "all": ...}`` per-user metrics of ``scores`` (rows = the task's users)."""
    everything = np.union1d(task.warm, task.new)
    return {"new": multi_target_metrics(scores, task.targets, task.new, ks=ks),
            "all": multi_target_metrics(scores, task.targets, everything, exclude=task.histories, ks=ks)}


def task_lists(task: ColdItemTask, scores: np.ndarray, k: int = max(KS)) -> np.ndarray:
    """Each scored user's top ``k`` among all items (warm and new, history left out): the lists the "all"
    ranking of :func:`task_metrics` scores, as item indices (users x k; -1 pads a shorter list)."""
    return ranked_lists(scores, np.union1d(task.warm, task.new), k, exclude=task.histories)


def row_results(task: ColdItemTask, scores: np.ndarray, ks: Sequence[int] = KS) -> dict[str, dict[str, np.ndarray]]:
    """:func:`task_metrics` and the top lists among all items (``{"lists": {"top": users x max(ks)}}``)."""
    return {**task_metrics(task, scores, ks), "lists": {"top": task_lists(task, scores, max(ks))}}
