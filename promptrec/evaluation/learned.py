"""Protocol A for the learned fusion: the hand-weighted fusion against LightGBM lambdarank and a linear
listwise model over per-candidate signals, trained on validation-fold pools only.

Every choice (the hand weights and pool depth, each learner's hyperparameters, which learner) is
made on the pools of the validation folds (:func:`~promptrec.evaluation.tuning.validation_folds`);
a learner's validation figures are out-of-fold (user-grouped cross-validation inside validation).
The test stage is scored once, by models trained on every validation pool.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from .beyond import bootstrap_indices, percentile_interval
from ..knowledge import FeatureStore
from ..llm.resolve import fingerprint, resolve_gguf
from ..pipeline import Recommender
from ..ranking.product import weighted_sum
from ..ranking.learned import LearnedFusion, Queries, out_of_fold_scores, query_ranks, user_folds
from ..knowledge.model_vectors import ModelVectors, model_vector_map
from ..knowledge.vector_cache import VectorCache
from ..ranking.signals import LLM_GROUPS, ItemKnowledge, SignalBuilder, signal_specs
from ..ranking.signals import signals_hash as signals_hash_of
from ..retrieval import EMBEDDING, fuse
from ..settings import Settings
from ..types import UserProfile
from ..knowledge.profile_store import history_key
from .knowledge import PROFILE_CUT, eval_feature_store, eval_profile_store, profile_history
from .beyond import GroupContext, describe, split_context
from .beyond import popularity_tiers as beyond_tiers
from .metrics import ndcg_at_k, recall_at_k
from .product import (SPLIT_STORE, Bench, collect_pools, ratings_by_user, restrict_pool, select_fusion, split_catalog,
                      split_store, stage_log, stage_world)
from .runner import EvalConfig, eval_settings
from .source import eval_state_dir, load_source
from .splits import protocol_a_split
from .tuning import validation_folds

Progress = Callable[[str, int], Callable[[int], None]]
TIERS = ("head", "torso", "tail")
# what the pools are retrieved from, in every cache key built on them: the catalog-text store, searched exactly
POOLS_FROM = (SPLIT_STORE, "exact nearest items")


class LearnedConfig(BaseModel):
    """What one learned-fusion evaluation does."""

    name: str = "learned-fusion"
    folds: int = Field(3, description="Validation folds whose pools train the learners (each holds out an earlier item).")
    cv_folds: int = Field(3, description="User-grouped cross-validation folds inside validation.")
    knowledge_model: str | None = Field("small", description="Model whose item features and profiles feed the LLM signals "
                                        "(small | medium | quality | a .gguf path; None: no LLM knowledge).")
    profile_model: str | None = Field(None, description="Model whose profiles feed the profile signals (default: "
                                      "the knowledge model; e.g. quality, whose profiles pass the gate more often).")
    lightgbm_grid: list[dict] = Field(default_factory=lambda: [
        {"rounds": 100, "num_leaves": 15, "learning_rate": 0.1}, {"rounds": 200, "num_leaves": 31, "learning_rate": 0.05}])
    model_vectors: str | None = Field(None, description="Model whose own vectors of each item's title + genres feed the "
                                      "model_vectors signals (small | medium | quality | a .gguf path; None: missing).")
    linear_grid: list[dict] = Field(default_factory=lambda: [{"l2": v} for v in (1.0, 100.0)])
    ablation_cv: bool = Field(True, description="Also cross-validate each ablation inside validation (3 more fits "
                              "each), besides the test rows of models trained on all validation pools.")
    bootstrap: int = Field(1000, description="Bootstrap resamples of users for the intervals.")
    ablations: bool = Field(True, description="Retrain without each LLM-knowledge signal group.")
    pool_depths: list[int | None] = Field(default_factory=lambda: [None, 100, 200], description="The learners' pool depth per "
                                          "source, chosen on validation among these (None: the hand-weighted "
                                          "fusion's own depth); the hand-weighted rows keep their depth.")


@dataclass
class StagePools:
    """One stage's (or validation fold's) queries with what the report needs per query."""

    queries: Queries
    hand: np.ndarray               # the hand-weighted fused score per row
    users: list[str]
    tiers: list[str]
    ratings: list[float]           # the target's rating (nan when unrated)
    fold: list[int] = field(default_factory=list)
    items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per row: the split's item index
    targets: list[int] = field(default_factory=list)     # per query: the target's item index
    user_index: list[int] = field(default_factory=list)  # per query: the split's user index


def knowledge_model_id(spec: str, settings: Settings) -> str:
    """The model id the LLM client gives ``spec`` (file name @ fingerprint), without loading the model."""
    path = resolve_gguf(spec, Path(settings.state_dir) / "models")
    return f"{path.name}@{fingerprint(path)}"


def interaction_tiers(counts: np.ndarray, items: Sequence[str]) -> dict[str, str]:
    """Protocol A's tiers (:func:`~.beyond.popularity_tiers`, by share of interactions): head holds the first
    20% of the interactions, tail at most the last 20%; the report's ablation and beyond-accuracy rows share them."""
    codes = beyond_tiers(np.asarray(counts, dtype=np.float64))
    return {item: TIERS[code] for item, code in zip(items, codes)}


def popularity_tiers(counts: np.ndarray, items: Sequence[str]) -> dict[str, str]:
    """head: top 20% of items by interactions; torso: next 30%; tail: the rest (ties by item order)."""
    order = np.argsort(-np.asarray(counts), kind="stable")
    n = len(order)
    tiers = {}
    for position, idx in enumerate(order):
        tiers[items[idx]] = "head" if position < 0.2 * n else "torso" if position < 0.5 * n else "tail"
    return tiers


def load_knowledge(dataset_state, runs_dir: Path, model_id: str | None,
                   histories: Mapping[str, Sequence[str]] | None = None,
                   profile_model_id: str | None = None) -> tuple[dict, dict[str, UserProfile]]:
    """Item features (item id -> ItemFeatures) of ``model_id`` and model-made profiles (user id -> UserProfile)
    of ``profile_model_id`` (default: the same model).

    With ``histories`` (user id -> the history the profile job read, :func:`profile_history`), a profile made
    from another history is left out."""
    if model_id is None:
        return {}, {}
    store: FeatureStore = eval_feature_store(dataset_state, model_id)
    features = {i: r.features for i, r in store.records().items() if r.features is not None}
    profiles = {}
    for record in eval_profile_store(runs_dir, profile_model_id or model_id).records().values():  # keyed by (user, history, ...)
        if record.result.source != "llm":
            continue
        if histories is not None and (record.user_id not in histories or
                                      record.history_key != history_key(histories[record.user_id])):
            continue
        profiles[record.user_id] = record.result.profile
    return features, profiles


def hand_scores(items, sources, collected, collected_sources, weights, hand_depth: int | None) -> np.ndarray:
    """The hand-weighted fused score of each of ``items`` (a pool with its ``sources``) as the product gives it
    at ``hand_depth``: fused over the top ``hand_depth`` per source of the ``collected`` pool, -inf for an item
    outside that pool (None: fused over ``items`` themselves)."""
    if not items:
        return np.zeros(0)
    if hand_depth is None:
        return fuse(sources, weights)[0]
    scored = dict(zip(collected, weighted_sum(list(collected), collected_sources, weights, hand_depth)))
    return np.array([scored[i] for i in items], dtype=np.float64)


def build_pools(world, users: Sequence[int], weights, depth, builder: SignalBuilder, profiles, tiers,
                ratings: Mapping[str, Mapping[str, float]], progress=None, hand_depth: int | None = None) -> StagePools:
    """Pool every user as the product does with the hand weights (top ``depth`` per source), and compute the
    signals. The hand-weighted score of each row is the product's at ``hand_depth`` (default ``depth``): fused
    over that pool, -inf for a row outside it."""
    raw = collect_pools(world, users, progress)
    hand_depth = depth if hand_depth is None else hand_depth
    blocks, labels, hand, offsets, who, tier, rated, rows, targets = [], [], [], [0], [], [], [], [], []
    index = world.split.item_index
    for u, (collected, collected_sources) in zip(users, raw):
        items, sources = restrict_pool(collected, collected_sources, weights, depth)
        history, target, user = world.history(u), world.target(u), world.split.users[u]
        rows.append(np.array([index[i] for i in items], dtype=np.int64))
        targets.append(index[target])
        blocks.append(builder.matrix(history, items, profiles.get(user)))
        labels.append(np.array([1.0 if i == target else 0.0 for i in items]))
        hand.append(hand_scores(items, sources, collected, collected_sources, weights, hand_depth
                                if hand_depth != depth else None))
        offsets.append(offsets[-1] + len(items))
        who.append(user)
        tier.append(tiers.get(target, "tail"))
        rated.append(float(ratings.get(user, {}).get(target, np.nan)))
    width = len(builder.names)
    X = np.vstack(blocks) if blocks else np.zeros((0, width))
    q = Queries(X, np.concatenate(labels) if labels else np.zeros(0), np.array(offsets, dtype=np.int64), who)
    return StagePools(q, np.concatenate(hand) if hand else np.zeros(0), who, tier, rated,
                      items=np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64), targets=targets,
                      user_index=list(users))


def concat(parts: Sequence[StagePools]) -> StagePools:
    X = np.vstack([p.queries.X for p in parts])
    labels = np.concatenate([p.queries.labels for p in parts])
    offsets = [0]
    for p in parts:
        offsets += (offsets[-1] + p.queries.offsets[1:]).tolist()
    users = [u for p in parts for u in p.users]
    q = Queries(X, labels, np.array(offsets, dtype=np.int64), users)
    return StagePools(q, np.concatenate([p.hand for p in parts]), users, [t for p in parts for t in p.tiers],
                      [r for p in parts for r in p.ratings], [n for n, p in enumerate(parts) for _ in p.users],
                      np.concatenate([p.items for p in parts]), [t for p in parts for t in p.targets],
                      [u for p in parts for u in p.user_index])


def save_pools(path: Path, pools: StagePools) -> None:
    """Write ``pools`` as one .npz of plain arrays (no pickle), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.npz")
    q = pools.queries
    np.savez(tmp, X=q.X, labels=q.labels, offsets=q.offsets, hand=pools.hand, users=np.array(pools.users, dtype=str),
             tiers=np.array(pools.tiers, dtype=str), ratings=np.array(pools.ratings, dtype=np.float64),
             fold=np.array(pools.fold, dtype=np.int64), items=np.asarray(pools.items, dtype=np.int64),
             targets=np.array(pools.targets, dtype=np.int64), user_index=np.array(pools.user_index, dtype=np.int64))
    tmp.replace(path)


def load_pools(path: Path) -> StagePools | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            users = z["users"].tolist()
            q = Queries(z["X"], z["labels"], z["offsets"], users)
            return StagePools(q, z["hand"], users, z["tiers"].tolist(), z["ratings"].tolist(), z["fold"].tolist(),
                              z["items"], z["targets"].tolist(), z["user_index"].tolist())
    except (OSError, ValueError, KeyError):  # (pools saved before items/targets were kept: built again)
        return None


def _digest(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            digest.update(part.read_bytes() if part.exists() else b"<missing>")
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def metrics_of(ranks: np.ndarray) -> dict[str, float]:
    return {"N@10": float(np.mean(ndcg_at_k(ranks, 10))), "R@10": float(np.mean(recall_at_k(ranks, 10))),
            "N@20": float(np.mean(ndcg_at_k(ranks, 20))), "R@20": float(np.mean(recall_at_k(ranks, 20)))}


def bootstrap_interval(values: np.ndarray, n: int, seed: int) -> list[float]:
    """95% percentile interval of the mean over users (resampled with replacement, seeded; the
    resampling of :mod:`promptrec.evaluation.beyond`)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return [float("nan"), float("nan")]
    return percentile_interval(values[bootstrap_indices(len(values), seed, n)].mean(axis=1))


def row(name: str, stage: str, ranks: np.ndarray, base: np.ndarray | None, tiers: Sequence[str], n_boot: int,
        seed: int, **extra) -> dict:
    """A report row: metrics, the N@10 interval over users, the paired N@10 difference to ``base``, N@10 by tier."""
    per_user = ndcg_at_k(ranks, 10)
    out = {"name": name, "split": stage, "metrics": metrics_of(ranks), "users": int(len(ranks)),
           "N@10_ci95": bootstrap_interval(per_user, n_boot, seed)}
    if base is not None:
        diff = per_user - ndcg_at_k(base, 10)
        out["diff_vs_hand_N@10"] = float(diff.mean())
        out["diff_vs_hand_ci95"] = bootstrap_interval(diff, n_boot, seed)
    tiers = np.asarray(tiers)
    out["N@10_by_tier"] = {t: float(per_user[tiers == t].mean()) if np.any(tiers == t) else None for t in TIERS}
    out["users_by_tier"] = {t: int(np.sum(tiers == t)) for t in TIERS}
    return {**out, **extra}


def top_lists(pools: StagePools, scores: np.ndarray, k: int = 10) -> list[np.ndarray]:
    """Each query's top ``k`` item indices under ``scores`` (ties: pool order, as :func:`query_ranks`)."""
    q, out = pools.queries, []
    for n in range(q.n_queries):
        a, b = q.offsets[n], q.offsets[n + 1]
        out.append(pools.items[a:b][np.argsort(-scores[a:b], kind="stable")[:k]])
    return out


def beyond_row(name: str, stage: str, pools: StagePools, scores: np.ndarray, context: GroupContext,
               queries: Sequence[int] | None = None) -> dict:
    """One row in Protocol A's format (``metrics``, ``intervals``, ``groups``): accuracy, the popularity
    bias of the top-10 lists and N@10/R@10 by target tier and user activity, each with its interval
    (:func:`~.beyond.describe`), over ``queries`` (default: all) of ``pools`` ranked by ``scores``."""
    chosen = list(range(pools.queries.n_queries)) if queries is None else list(queries)
    ranks, lists = _ranks(pools, scores), top_lists(pools, scores)
    described = describe(ranks[chosen], [pools.targets[n] for n in chosen], [lists[n] for n in chosen], context,
                         [pools.user_index[n] for n in chosen])
    return {"name": name, "split": stage, **described}


def _ranks(pools: StagePools, scores: np.ndarray) -> np.ndarray:
    return query_ranks(scores, pools.queries)


def _positive(q: Queries) -> list[int]:
    return [n for n in range(q.n_queries) if q.labels[q.offsets[n]:q.offsets[n + 1]].max(initial=0) > 0]


def multitask_labels(pools: StagePools) -> np.ndarray:
    """Graded labels for the multi-task model: the held-out item 3 when liked (rating >= 4), 2 when
    unrated or in between, 1 when disliked (<= 2); every other candidate 0."""
    labels = pools.queries.labels.copy()
    q = pools.queries
    for n, rating in enumerate(pools.ratings):
        grade = 3.0 if rating >= 4 else 1.0 if rating <= 2 else 2.0  # nan compares False: 2
        seg = slice(q.offsets[n], q.offsets[n + 1])
        labels[seg] = np.where(labels[seg] > 0, grade, 0.0)
    return labels


def run_learned_fusion(config: LearnedConfig, settings: Settings, runs_dir: Path | None = None,
                       progress: Progress | None = None, say: Callable[[str], None] = print) -> dict:
    """Run the comparison and return the payload (rows, ablation, multi-task, selection, meta)."""
    started = time.perf_counter()
    bar = progress or (lambda label, total: (lambda n: None))
    seed = settings.seed
    source = load_source(settings)
    dataset = source.dataset
    runs_dir = Path(runs_dir) if runs_dir else eval_state_dir(settings, source)
    split = protocol_a_split(dataset.interactions.frame)
    base = EvalConfig()
    settings = eval_settings(settings, base.pool_depths)
    product = Recommender(settings, dataset=dataset, llm=False)
    catalog = split_catalog(split, dataset)
    store = split_store(runs_dir / "chroma", product.embedder, catalog)
    bench = Bench(settings, catalog, store, product.embedder, None, product.features, ratings_by_user(dataset.interactions))
    ratings = bench.ratings
    model_id = knowledge_model_id(config.knowledge_model, settings) if config.knowledge_model else None
    profile_model_id = (knowledge_model_id(config.profile_model, settings) if config.profile_model and model_id
                        else model_id)
    histories = {split.users[u]: profile_history(split, u) for u in range(split.n_users)}
    features, profiles = load_knowledge(product.state, runs_dir, model_id, histories, profile_model_id)
    if profiles and config.folds - 1 > PROFILE_CUT:
        say(f"profiles were made {PROFILE_CUT} items before the end of each training history; with {config.folds} "
            f"folds they would have seen the targets of folds {PROFILE_CUT + 1}..{config.folds - 1}: profile signals off")
        profiles = {}
    split_features = {i: f for i, f in features.items() if i in split.item_index}
    say(f"{dataset.name} ({source.sha256[:12]}): {split.n_users} users, {split.n_items} items; knowledge of "
        f"{model_id}: features for {len(split_features)} split items, profiles for {len(profiles)} users")
    vectors = VectorCache(product.embedder, runs_dir / "vectors")
    t0 = time.perf_counter()
    knowledge = ItemKnowledge.build(catalog, split_features, vectors)
    model_vectors_id = None
    if config.model_vectors:
        reader = ModelVectors(config.model_vectors, Path(settings.state_dir) / "models", threads=settings.llm.n_threads)
        model_vectors_id = reader.model_id
        # the product's cache of the same vectors (keyed by model and text): `promptrec fit-fusion --model-vectors`
        # and this run read each title once between them
        knowledge.model_vectors = model_vector_map(list(catalog), VectorCache(reader, product.state.root / "vectors"),
                                                   bar(f"model vectors ({reader.model_id})", len(catalog)))
        say(f"model vectors of {len(knowledge.model_vectors)} items by {reader.model_id} ({reader.dimension} dimensions)")
    timings = {"embed_s": time.perf_counter() - t0}

    folds = validation_folds(split, config.folds)
    worlds = [stage_world(split, "valid", bench, runs_dir / "collab")] + [
        stage_world(f, "valid", bench, runs_dir / "collab" / f"fold{n}") for n, f in enumerate(folds) if n > 0]
    test_world = stage_world(split, "test", bench, runs_dir / "collab")

    # 1. the hand-weighted fusion, selected on validation pools exactly as eval/run.py does
    t0 = time.perf_counter()
    others = {n: w for n, w in settings.fusion.weights.items() if n != EMBEDDING}
    grid = [{EMBEDDING: w, **others} for w in base.embedding_weights]
    cache = runs_dir / "learned-fusion"
    hand_key = _digest(source.sha256, config.folds, grid, base.pool_depths, settings.fusion.model_dump(), *POOLS_FROM)
    chosen_path = cache / f"hand-{hand_key}.json"
    if chosen_path.exists():
        chosen = json.loads(chosen_path.read_text())
        weights, depth = chosen["weights"], chosen["pool_depth"]
    else:
        deep = [collect_pools(w, range(f.n_users), bar(f"validation pools, fold {n + 1}", f.n_users))
                for n, (w, f) in enumerate(zip(worlds, folds))]
        targets = [w.target(u) for w, f in zip(worlds, folds) for u in range(f.n_users)]
        weights, depth, _ = select_fusion([p for fold in deep for p in fold], targets, grid, sorted(base.pool_depths))
        del deep
        cache.mkdir(parents=True, exist_ok=True)
        chosen_path.write_text(json.dumps({"weights": weights, "pool_depth": depth}))
    say(f"hand-weighted fusion chosen on validation: {weights}, top {depth} per source")
    timings["hand_selection_s"] = time.perf_counter() - t0

    # 2. signals on every validation fold's pools and on the test stage's, at each learners' pool depth
    t0 = time.perf_counter()
    sources = SignalBuilder(test_world.retriever.collab, knowledge).sources
    k_test = replace(knowledge).set_interactions(stage_log(split, "test"))
    builder = SignalBuilder(test_world.retriever.collab, k_test, vectors, settings.fusion.recency_half_life)

    def signal_pools(learn_depth: int) -> tuple[StagePools, StagePools]:
        key = _digest(source.sha256, config.folds, weights, depth, signals_hash_of(sources), model_id, settings.seed,
                      settings.fusion.model_dump(), *POOLS_FROM, "interaction-share tiers",
                      eval_feature_store(product.state, model_id).path if model_id else None,
                      eval_profile_store(runs_dir, profile_model_id).path if model_id else None,
                      "profiles by user id", bool(profiles),  # pools cached before profiles reached the signals differ
                      *(["model vectors", model_vectors_id] if model_vectors_id else []),
                      *(["learners at", learn_depth] if learn_depth != depth else []))
        valid, test = load_pools(cache / f"valid-{key}.npz"), load_pools(cache / f"test-{key}.npz")
        if valid is not None and test is not None:
            return valid, test
        parts = []
        for n, (w, f) in enumerate(zip(worlds, folds)):
            k = replace(knowledge).set_interactions(stage_log(f, "valid"))
            counts = np.asarray(f.fit_matrix("valid").sum(axis=0)).ravel()
            fold_builder = SignalBuilder(w.retriever.collab, k, vectors, settings.fusion.recency_half_life)
            parts.append(build_pools(w, range(f.n_users), weights, learn_depth, fold_builder, profiles,
                                     interaction_tiers(counts, f.items), ratings,
                                     bar(f"signals, top {learn_depth}, fold {n + 1}", f.n_users), hand_depth=depth))
        valid = concat(parts)
        counts = np.asarray(split.fit_matrix("test").sum(axis=0)).ravel()
        test = build_pools(test_world, range(split.n_users), weights, learn_depth, builder, profiles,
                           interaction_tiers(counts, split.items), ratings, bar(f"signals, top {learn_depth}, test",
                                                                               split.n_users), hand_depth=depth)
        save_pools(cache / f"valid-{key}.npz", valid)
        save_pools(cache / f"test-{key}.npz", test)
        return valid, test

    depths = list(dict.fromkeys(depth if d is None else d for d in config.pool_depths))
    pools = {d: signal_pools(d) for d in depths}
    names, signals_hash = builder.names, builder.hash
    timings["signals_s"] = time.perf_counter() - t0

    # 3. pool depth, hyperparameters and learner by out-of-fold N@10 over every validation query
    t0 = time.perf_counter()
    grids = {"lightgbm": config.lightgbm_grid, "linear": config.linear_grid}
    tried, by_depth = [], {}
    for d in depths:
        valid = pools[d][0]
        cv = user_folds(valid.users, config.cv_folds, seed)
        best: dict = {}
        for kind, grid_k in grids.items():
            for params in grid_k:
                oof = out_of_fold_scores(kind, valid.queries, params, cv, seed)
                value = metrics_of(_ranks(valid, oof))["N@10"]
                tried.append({"kind": kind, "params": params, "pool_depth": d, "oof_N@10": value})
                say(f"{kind} {params}, top {d}: out-of-fold validation N@10 {value:.4f}")
                if kind not in best or value > best[kind][1]:
                    best[kind] = (params, value, oof)
        by_depth[d] = best
    learn_depth = max(depths, key=lambda d: max(v[1] for v in by_depth[d].values()))  # ties: the earlier depth
    best = by_depth[learn_depth]
    valid, test = pools[learn_depth]
    cv = user_folds(valid.users, config.cv_folds, seed)
    hand_valid = _ranks(valid, valid.hand)
    hand_value = metrics_of(hand_valid)["N@10"]
    winner = max(best, key=lambda kd: best[kd][1])
    won = best[winner][1] > hand_value
    timings["selection_s"] = time.perf_counter() - t0
    say(f"chosen on validation: {winner} {best[winner][0]}, top {learn_depth} (N@10 {best[winner][1]:.4f} vs "
        f"hand-weighted {hand_value:.4f})")

    # 4. rows: validation (fold 0 = the split's validation stage, out-of-fold) and test (trained on all validation pools)
    t0 = time.perf_counter()
    nb = config.bootstrap
    fold0 = [n for n, f in enumerate(valid.fold) if f == 0]
    v0 = lambda ranks: ranks[fold0]  # noqa: E731
    v0_tiers = [valid.tiers[n] for n in fold0]
    hand_test = _ranks(test, test.hand)
    train_q = valid.queries.subset(_positive(valid.queries))
    rows = [row("Hand-weighted fusion", "valid", v0(hand_valid), None, v0_tiers, nb, seed, weights=weights, pool_depth=depth),
            row("Hand-weighted fusion", "test", hand_test, None, test.tiers, nb, seed, weights=weights, pool_depth=depth)]
    models = {}
    scored = {"Hand-weighted fusion": (valid.hand, test.hand)}  # name -> (validation, test) scores, for beyond rows
    for kind in grids:
        params, _, oof = best[kind]
        label = {"lightgbm": "Learned fusion (LightGBM lambdarank)", "linear": "Learned fusion (linear listwise)"}[kind]
        rows.append(row(label, "valid", v0(_ranks(valid, oof)), v0(hand_valid), v0_tiers, nb, seed, params=params,
                        note="out-of-fold (user-grouped CV inside validation)"))
        models[kind] = LearnedFusion.fit(kind, train_q, names, signals_hash, params, seed)
        test_scores = models[kind].predict(test.queries.X)
        rows.append(row(label, "test", _ranks(test, test_scores), hand_test, test.tiers, nb, seed, params=params))
        scored[label] = (oof, test_scores)
    timings["final_s"] = time.perf_counter() - t0

    # 5. ablation: the chosen learner without each LLM-knowledge signal group, and without all of them
    ablation = []
    if config.ablations:
        t0 = time.perf_counter()
        groups = {s.name: s.group for s in signal_specs(builder.sources)}
        params = best[winner][0]
        drops = {f"without {g}": {g} for g in LLM_GROUPS}
        drops["without all LLM knowledge"] = set(LLM_GROUPS)
        full_valid = v0(_ranks(valid, best[winner][2]))
        full_test = _ranks(test, models[winner].predict(test.queries.X))
        ablation.append(row(f"{winner}, all signals", "valid", full_valid, v0(hand_valid), v0_tiers, nb, seed))
        ablation.append(row(f"{winner}, all signals", "test", full_test, hand_test, test.tiers, nb, seed))
        for label, dropped in drops.items():
            keep = [j for j, nme in enumerate(names) if groups[nme] not in dropped]
            model = LearnedFusion.fit(winner, train_q.subset(range(train_q.n_queries), keep), [names[j] for j in keep],
                                      signals_hash, params, seed)
            if config.ablation_cv:
                sub = valid.queries.subset(range(valid.queries.n_queries), keep)
                oof_v = out_of_fold_scores(winner, sub, params, cv, seed)
                ranks_v = v0(_ranks(valid, oof_v))
                ablation.append({**row(f"{winner}, {label}", "valid", ranks_v, v0(hand_valid), v0_tiers, nb, seed),
                                 "diff_vs_full_ci95": bootstrap_interval(ndcg_at_k(full_valid, 10) - ndcg_at_k(ranks_v, 10), nb, seed)})
            scores_t = model.predict(test.queries.X[:, keep])
            ranks_t = _ranks(test, scores_t)
            ablation.append({**row(f"{winner}, {label}", "test", ranks_t, hand_test, test.tiers, nb, seed),
                             "diff_vs_full_ci95": bootstrap_interval(ndcg_at_k(full_test, 10) - ndcg_at_k(ranks_t, 10), nb, seed)})
            if label == "without all LLM knowledge" and config.ablation_cv:
                scored[f"Learned fusion ({winner}), {label}"] = (oof_v, scores_t)
        timings["ablation_s"] = time.perf_counter() - t0

    # beyond accuracy (issue point 5): popularity bias of the lists, tiers and activity groups with intervals
    t0 = time.perf_counter()
    contexts = {stage: split_context(split, stage, seed, dataset.users) for stage in ("valid", "test")}
    beyond = [beyond_row(name, "valid", valid, scores[0], contexts["valid"], fold0) for name, scores in scored.items()]
    beyond += [beyond_row(name, "test", test, scores[1], contexts["test"]) for name, scores in scored.items()]
    timings["beyond_s"] = time.perf_counter() - t0

    # 6. multi-task (3c), validation only: the same learner on graded next-item + liked/disliked labels
    t0 = time.perf_counter()
    mt_oof = out_of_fold_scores(winner, valid.queries, best[winner][0], cv, seed, train_labels=multitask_labels(valid))
    rated = np.asarray(valid.ratings)
    multitask = []
    for label, scores in (("next-item labels", best[winner][2]), ("next-item + liked/disliked labels", mt_oof)):
        ranks = _ranks(valid, scores)
        multitask.append({"name": f"{winner}, {label}", "split": "valid (all folds, out-of-fold)",
                          "N@10": float(np.mean(ndcg_at_k(ranks, 10))),
                          "N@10_liked_targets": float(np.mean(ndcg_at_k(ranks[rated >= 4], 10))),
                          "N@10_disliked_targets": float(np.mean(ndcg_at_k(ranks[rated <= 2], 10))),
                          "N@10_ci95": bootstrap_interval(ndcg_at_k(ranks, 10), nb, seed),
                          "targets": int(len(ranks)), "liked": int(np.sum(rated >= 4)), "disliked": int(np.sum(rated <= 2))})
    timings["multitask_s"] = time.perf_counter() - t0

    importance = {}
    if winner == "lightgbm":
        gains = models["lightgbm"].model.feature_importance("gain")
        importance = {n: round(float(g), 1) for n, g in sorted(zip(names, gains), key=lambda p: -p[1])}
    elif winner == "linear":
        importance = {n: round(float(w), 4) for n, w in zip(names, models["linear"].model.weights)}
    meta = {
        "protocol": "A", "dataset": source.meta(), "seed": seed, "config": config.model_dump(),
        "knowledge_model": model_id, "profile_model": profile_model_id, "model_vectors": model_vectors_id, "items_with_features": len(split_features), "split_items": split.n_items,
        "users_with_profiles": len([u for u in split.users if u in profiles]), "users": split.n_users,
        "signals": names, "signals_hash": signals_hash,
        "validation_queries": valid.queries.n_queries, "training_queries": train_q.n_queries,
        "test_queries": test.queries.n_queries, "embedder": product.embedder.name,
        "vector_store": f"{SPLIT_STORE} (catalog text only)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
        "timings_s": {n: round(v, 1) for n, v in timings.items()}, "wall_s": round(time.perf_counter() - started, 1),
    }
    selection = {"hand_weights": weights, "pool_depth": depth, "learners_pool_depth": learn_depth,
                 "hand_oof_N@10": hand_value, "tried": tried,
                 "winner": winner, "winner_params": best[winner][0], "winner_oof_N@10": best[winner][1],
                 "won_on_validation": won, "importance": importance}
    meta["groups"] = {stage: c.describe_groups() for stage, c in contexts.items()}
    return {"rows": rows, "ablation": ablation, "multitask": multitask, "beyond": beyond, "selection": selection,
            "meta": meta}


__all__ = ["LearnedConfig", "TIERS", "beyond_row", "bootstrap_interval", "build_pools", "hand_scores", "knowledge_model_id",
           "interaction_tiers", "load_knowledge", "multitask_labels", "popularity_tiers", "row", "run_learned_fusion", "top_lists"]
