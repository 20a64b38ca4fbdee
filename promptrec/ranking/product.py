"""The learned fusion in the product: a ranker the retriever calls on its pool, and the job that fits it.

:func:`fit_product_fusion` trains on the product's own data: for each fold ``n`` (1..folds) every
user's ``n``-th most recent item is held out, the collaborative scorers are fitted on what comes
before the held-out items, the product's retriever pools candidates for each user, and the pool's
signals are labelled with the held-out item. A user-grouped cross-validation on those queries
compares the learned ranker with the hand-weighted sum; the file records the result, and the
product uses the model only when it won (``metadata.won_on_validation``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data import Catalog, InteractionLog
from ..knowledge import FeatureStore
from ..retrieval import fuse
from ..retrieval.fusion import restrict_pool
from ..types import History, ItemFeatures, UserProfile
from .learned import FusionModelError, LearnedFusion, Queries, out_of_fold_scores, query_ranks, user_folds
from ..knowledge.vector_cache import VectorCache
from .signals import ItemKnowledge, SignalBuilder

MODEL_FILE = "fusion-model.json"
DEFAULT_KIND = "linear"  # chosen on Protocol A validation (eval/learned_fusion.py): linear, l2 100, top 200 per source
DEFAULT_PARAMS = {"linear": {"l2": 100.0}, "lightgbm": {"rounds": 100, "num_leaves": 15, "learning_rate": 0.1}}


class LearnedRanker:
    """Scores a retriever's pool with a fitted :class:`LearnedFusion` over this data's signals."""

    def __init__(self, model: LearnedFusion, builder: SignalBuilder) -> None:
        if model.signals != builder.names:
            raise FusionModelError("the learned fusion model was trained on other signals; retrain it")
        self.model = model
        self.builder = builder
        # the pool depth it was trained on, so it ranks the pools it learned from (None: older files; the
        # retriever's own depth)
        self.pool_depth: int | None = model.metadata.get("pool_depth")

    def __call__(self, history: History, items: list[str], profile: UserProfile | None = None) -> np.ndarray:
        return self.model.predict(self.builder.matrix(history, items, profile))


def truncate_log(log: InteractionLog, n: int, min_history: int = 3) -> tuple[InteractionLog, dict[str, tuple[str, int]]]:
    """The log without every user's ``n`` most recent items, and each kept user's held-out target
    (their ``n``-th most recent item, with its position). Users with fewer than ``n + min_history``
    items keep their whole history and get no target."""
    frame = log.frame.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    position = frame.groupby("user_id", sort=False).cumcount(ascending=False)  # 0 = most recent
    length = frame.groupby("user_id", sort=False)["item_id"].transform("size")
    eligible = length >= n + min_history
    keep = ~eligible | (position >= n)
    targets = frame[eligible & (position == n - 1)]
    out = {str(u): (str(i), n) for u, i in zip(targets["user_id"], targets["item_id"])}
    return InteractionLog(frame[keep].reset_index(drop=True)), out


def _history(log: InteractionLog, user: str) -> History:
    return History(items=log.history(user), timestamps=log.timestamps(user), ratings=log.ratings(user))


def fit_product_fusion(
    *,
    fusion_settings,
    log: InteractionLog,
    catalog: Catalog,
    store,
    embedder,
    features: Mapping[str, ItemFeatures],
    state_root: Path,
    dataset_sha256: str,
    fit_collab: Callable,
    build_retriever: Callable,
    folds: int = 3,
    kind: str = DEFAULT_KIND,
    params: Mapping | None = None,
    seed: int = 0,
    knowledge_model: str | None = None,
    profiles: Mapping[str, UserProfile] | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    model_vectors: Mapping[str, np.ndarray] | None = None,
    model_vectors_name: str | None = None,
) -> LearnedFusion:
    """Train the learned fusion on the product's data and save it as ``state_root/fusion-model.json``.

    Its pools are the retriever's at ``fusion_settings.learned_depth`` per source (the depth the product ranks
    with it); the weighted sum it is compared with ranks the pool the product builds without it (the top
    ``candidate_depth`` of each source, :func:`~promptrec.retrieval.fusion.restrict_pool`). ``model_vectors``
    (item id -> the knowledge model's own centred vector, :mod:`promptrec.knowledge.model_vectors`) feed the
    ``model_sim`` signals; ``model_vectors_name`` (the reader's name) is recorded so the product reads the same
    cached vectors when it ranks."""
    params = dict(DEFAULT_PARAMS.get(kind, {}) if params is None else params)
    deep = fusion_settings.model_copy(update={"candidate_depth": fusion_settings.learned_depth})
    profiles = profiles or {}
    vectors = VectorCache(embedder, Path(state_root) / "vectors")
    base = ItemKnowledge.build(catalog, features, vectors)
    base.model_vectors = dict(model_vectors or {})
    blocks, labels, hand, offsets, users = [], [], [], [0], []
    builder = None
    for n in range(1, folds + 1):
        truncated, targets = truncate_log(log, n)
        collab = fit_collab(fusion_settings, truncated, Path(state_root) / "fusion-folds" / f"fold{n}")
        retriever = build_retriever(deep, store, embedder, catalog, collab)
        builder = SignalBuilder(collab, replace(base).set_interactions(truncated), vectors,
                                fusion_settings.recency_half_life)
        advance = progress(f"fusion training pools, fold {n}", len(targets)) if progress else None
        for user, (target, _) in sorted(targets.items()):
            history = _history(truncated, user)
            items, sources = retriever.pool(history)
            if advance:
                advance(1)
            if not items:
                continue
            blocks.append(builder.matrix(history, items, profiles.get(user)))
            labels.append(np.array([1.0 if i == target else 0.0 for i in items]))
            hand.append(weighted_sum(items, sources, retriever.weights, fusion_settings.candidate_depth))
            offsets.append(offsets[-1] + len(items))
            users.append(user)
    if builder is None or not users:
        raise FusionModelError("no user has enough history to train the learned fusion")
    q = Queries(np.vstack(blocks), np.concatenate(labels), np.array(offsets, dtype=np.int64), users)
    cv = user_folds(users, 3, seed)
    oof = out_of_fold_scores(kind, q, params, cv, seed)
    learned_q, hand_q = _ndcg10(query_ranks(oof, q)), _ndcg10(query_ranks(np.concatenate(hand), q))
    learned, handmade = float(np.mean(learned_q)), float(np.mean(hand_q))
    keep = [j for j in range(q.n_queries) if q.labels[q.offsets[j]:q.offsets[j + 1]].max(initial=0) > 0]
    metadata = {
        "dataset_sha256": dataset_sha256, "folds": folds, "pool_depth": fusion_settings.learned_depth,
        "users": len(set(users)), "queries": q.n_queries,
        "training_queries": len(keep), "knowledge_model": knowledge_model, "items_with_features": len(features),
        "users_with_profiles": len(profiles), "lightgbm_version": _version("lightgbm"),
        "model_vectors": model_vectors_name if model_vectors else None,
        "items_with_model_vectors": len(model_vectors or {}),
        "validation": {"method": "user-grouped 3-fold CV over the training queries", "learned_N@10": learned,
                       "hand_weighted_N@10": handmade, "hand_weights": dict(fusion_settings.weights),
                       "difference_95ci_over_users": _paired_interval(learned_q - hand_q, users, seed)},
        "won_on_validation": learned > handmade,
        "fusion_settings_hash": hashlib.sha256(fusion_settings.model_dump_json().encode()).hexdigest()[:16],
    }
    model = LearnedFusion.fit(kind, q.subset(keep), builder.names, builder.hash, params, seed, metadata)
    model.save(Path(state_root) / MODEL_FILE)
    return model


def weighted_sum(items: list[str], sources: Mapping[str, np.ndarray], weights: Mapping[str, float],
                 depth: int) -> np.ndarray:
    """The weighted sum's score of each pooled item as the product gives it at ``depth`` per source: fused over
    that smaller pool, -inf for an item outside it."""
    small, small_sources = restrict_pool(items, sources, weights, depth)
    fused = dict(zip(small, fuse(small_sources, weights)[0])) if small else {}
    return np.array([fused.get(i, -np.inf) for i in items], dtype=np.float64)


def _paired_interval(differences: np.ndarray, users: list[str], seed: int, n_boot: int = 1000) -> list[float] | None:
    """95% bootstrap interval of the mean per-query difference, resampling users (a user's queries together)."""
    from ..evaluation.beyond import bootstrap_indices, percentile_interval

    index = {u: n for n, u in enumerate(dict.fromkeys(users))}
    codes = np.array([index[u] for u in users])
    totals, counts = np.bincount(codes, differences), np.bincount(codes).astype(np.float64)
    draws = bootstrap_indices(len(index), seed, n_boot)
    return percentile_interval(totals[draws].sum(axis=1) / counts[draws].sum(axis=1))


def _ndcg10(ranks: np.ndarray) -> np.ndarray:
    return np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_ranker(path: Path, builder: SignalBuilder) -> LearnedRanker | None:
    """The ranker saved at ``path`` when it exists and won on validation (None otherwise).

    Raises FusionModelError for a file made for other signals or that cannot be read."""
    if not Path(path).exists():
        return None
    model = LearnedFusion.load(path, builder.hash)
    if not model.metadata.get("won_on_validation"):
        return None
    return LearnedRanker(model, builder)


def features_of(store: FeatureStore) -> dict[str, ItemFeatures]:
    return {i: r.features for i, r in store.records().items() if r.features is not None}


__all__ = ["DEFAULT_KIND", "DEFAULT_PARAMS", "MODEL_FILE", "LearnedRanker", "features_of", "fit_product_fusion", "load_ranker",
           "truncate_log", "weighted_sum"]
