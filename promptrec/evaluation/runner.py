"""One Protocol A run over every stage: classic baselines, embedding-only retrieval, fused
retrieval, fused retrieval + LLM rerank and the product's explained answer (the fused list with the
model's reasons); every choice made on validation, test read once."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ..knowledge import FeatureStore
from ..llm.resolve import file_sha256
from ..pipeline import Recommender
from ..prompts import load_prompt
from ..rerank import REASON_MAX_CHARS, reply_budget
from ..retrieval import CLASSIC, EMBEDDING
from ..settings import Settings
from .beyond import bootstrap_indices, describe, percentile_interval, split_context
from .classic import classic_table
from .explain_eval import explain_log, explained_row, run_explained
from .faithfulness import ClaimReader
from .product import (SPLIT_STORE, Bench, collect_pools, rank_of, ratings_by_user, retrieval_lists, select_fusion,
                      split_catalog, split_store, stage_world)
from .rerank_eval import rerank_log, rerank_row, run_rerank, select_llm_weight
from .source import eval_state_dir, load_source
from .splits import protocol_a_split
from .tuning import validation_folds

Progress = Callable[[str, int], Callable[[int], None]]
RECORD_VERSION = "records-2"  # records keep the model's reasons and the history length (explanation metrics)
EXPLAIN_RECORD_VERSION = "explain-records-1"
EXPLAINED_ROW = "Fused + model reasons (product)"


class EvalConfig(BaseModel):
    """What one evaluation run does (the stages themselves are configured by :class:`Settings`)."""

    name: str = "protocol-a"
    classic: bool = Field(True, description="Include the classic baselines (Pop, ItemKNN, EASE, sequential, blend).")
    embedding_weights: list[float] = Field(default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0],
                                           description="Embedding weights tried on validation (other sources as set).")
    folds: int = Field(3, description="Validation folds for the fusion weights (each holds out an earlier item).")
    retrieval_users: int | None = Field(None, description="Seeded sample for the retrieval stages (None: all users).")
    pool_depths: list[int] = Field(default_factory=lambda: [50, 100, 200],
                                   description="Candidate pool depths (top-N per source) tried on validation.")
    llm: bool = Field(False, description="Run the LLM stage with the model the settings name (settings.llm).")
    llm_users: int = Field(50, description="Seeded sample of users for the LLM stage (per split).")
    rerank_k: int = Field(10, description="The k of the answer the model reranks for (depth: settings.rerank.depth) "
                                          "and of the explained answer.")
    rerank: bool = Field(True, description="Run the LLM rerank stage (and choose its blend weight on validation); "
                                           "the product's explained answer is measured either way.")


def eval_settings(settings: Settings, pool_depths: list[int]) -> Settings:
    """The product's settings with the fusion the evaluation fits once and then reweights on validation:
    every weighted collaborative source plus the embedding, at the deepest pool tried. The split is
    already k-core, so every split item stays in the collaborative index (``min_item_support`` 1)."""
    others = {n: w for n, w in settings.fusion.weights.items() if n != EMBEDDING and w > 0} or {CLASSIC: 1.0}
    fusion = settings.fusion.model_copy(update={"weights": {EMBEDDING: 1.0, **others},
                                                "candidate_depth": max(pool_depths), "min_item_support": 1})
    return settings.model_copy(update={"fusion": fusion})


def features_digest(features: FeatureStore) -> str:
    """Names the item features the rerank prompt describes candidates with."""
    return hashlib.sha256(features.path.read_bytes()).hexdigest()[:12] if features.path.exists() else "none"


def sample_users(n_users: int, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_users, size=min(n, n_users), replace=False).tolist())


def _row(name: str, split: str, metrics: dict, **extra) -> dict:
    return {"name": name, "split": split, "metrics": metrics, **extra}


def _list_row(world, users: list[int], lists: list[list[str]], context, seconds: list[float] | None = None,
              ceiling: int | None = None) -> dict:
    """Metrics (with intervals and groups) of ranked item-id lists for split users ``users``."""
    index = world.split.item_index
    ranks = np.array([rank_of(world.target(u), ranked) for u, ranked in zip(users, lists)])
    targets = [index[world.target(u)] for u in users]
    recs = [np.array([index[i] for i in ranked[:10]], dtype=np.int64) for ranked in lists]
    described = describe(ranks, targets, recs, context, users)
    metrics, intervals = described["metrics"], dict(described["intervals"])
    idx = bootstrap_indices(len(users), context.seed)
    if ceiling is not None:  # the product's rerank input: the target within it
        inside = np.array([world.target(u) in lst[:ceiling] for u, lst in zip(users, lists)], dtype=np.float64)
        metrics["recall_at_rerank_depth"] = float(inside.mean())
        intervals["recall_at_rerank_depth"] = percentile_interval(inside[idx].mean(axis=1))
    if seconds is not None:
        secs = np.asarray(seconds, dtype=np.float64)
        metrics.update({"latency_p50_s": float(np.median(secs)), "latency_p95_s": float(np.percentile(secs, 95))})
        intervals["latency_p50_s"] = percentile_interval(np.median(secs[idx], axis=1))
        intervals["latency_p95_s"] = percentile_interval(np.percentile(secs[idx], 95, axis=1))
    return {"metrics": metrics, "intervals": intervals, "groups": described["groups"]}


def _fingerprint(*parts) -> str:
    """12 hex digits naming a run's settings (its resumable record files are kept under this name)."""
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True).encode()).hexdigest()[:12]


def run_protocol_a(config: EvalConfig, settings: Settings, runs_dir: Path | None = None,
                   progress: Progress | None = None, say: Callable[[str], None] = print) -> dict:
    """Run every stage on ``settings.dataset`` and return the payload (rows, selections, meta) for
    :func:`~promptrec.evaluation.report.write_report`. State (the split's store, fitted models, LLM
    records) goes to ``runs_dir``, by default ``STATE_DIR/eval/<dataset>-<content hash>``."""
    started = time.perf_counter()
    bar = progress or (lambda label, total: (lambda n: None))
    source = load_source(settings)
    dataset = source.dataset
    runs_dir = Path(runs_dir) if runs_dir else eval_state_dir(settings, source)
    split = protocol_a_split(dataset.interactions.frame)
    say(f"{dataset.name} ({source.sha256[:12]}), split: {split.n_users} users, {split.n_items} items, "
        f"{split.n_interactions} interactions")
    rows: list[dict] = []
    timings: dict[str, float] = {}
    selection: dict = {}
    seed = settings.seed
    # popularity tiers, activity groups and (with a users file) attributes per stage; intervals seeded by the root seed
    contexts = {s: split_context(split, s, seed, dataset.users) for s in ("valid", "test")}

    if config.classic:
        t0 = time.perf_counter()
        from ..collab import classic_scorers

        for row in classic_table(split, classic_scorers(), contexts=contexts):
            metrics = {k: v for k, v in row.items() if k not in ("model", "stage", "intervals", "groups")}
            rows.append(_row(str(row["model"]), str(row["stage"]), metrics, intervals=row["intervals"],
                             groups=row["groups"]))
        timings["classic_s"] = time.perf_counter() - t0

    settings = eval_settings(settings, config.pool_depths)
    product = Recommender(settings, dataset=dataset, llm=None if config.llm else False)
    catalog = split_catalog(split, dataset)
    t0 = time.perf_counter()
    store = split_store(runs_dir / "chroma", product.embedder, catalog)
    timings["index_s"] = time.perf_counter() - t0
    bench = Bench(settings, catalog, store, product.embedder, product.client, product.features,
                  ratings_by_user(dataset.interactions))
    worlds = {s: stage_world(split, s, bench, runs_dir / "collab") for s in ("valid", "test")}
    everyone = (list(range(split.n_users)) if config.retrieval_users is None
                else sample_users(split.n_users, config.retrieval_users, seed))

    # fusion weights: chosen on validation pools of several folds (none touches a test item)
    t0 = time.perf_counter()
    pools, targets = [], []
    for n, fold in enumerate(validation_folds(split, config.folds)):
        world = worlds["valid"] if n == 0 else stage_world(fold, "valid", bench, runs_dir / "collab" / f"fold{n}")
        fold_users = [u for u in range(fold.n_users) if fold.users[u] in {split.users[v] for v in everyone}]
        pools += collect_pools(world, fold_users, bar(f"validation pools, fold {n + 1}", len(fold_users)))
        targets += [world.target(u) for u in fold_users]
    others = {n: w for n, w in settings.fusion.weights.items() if n != EMBEDDING}
    grid = [{EMBEDDING: w, **others} for w in config.embedding_weights]
    weights, pool_depth, tried = select_fusion(pools, targets, grid, sorted(config.pool_depths))
    selection["fusion_weights"] = {"chosen": weights, "pool_depth": pool_depth, "folds": config.folds,
                                   "targets": len(targets), "tried_on_validation": tried}
    say(f"fusion weights and pool depth chosen on validation: {weights}, top {pool_depth} per source")
    timings["fusion_selection_s"] = time.perf_counter() - t0

    for stage, world in worlds.items():
        for name, w in (("Embedding only (Chroma)", {EMBEDDING: 1.0}), ("Fused retrieval", weights)):
            t0 = time.perf_counter()
            lists, secs = retrieval_lists(world.with_weights(w, pool_depth), everyone, 100, bar(f"{name} [{stage}]", len(everyone)))
            ceiling = max(config.rerank_k, settings.rerank.depth)  # the product's rerank input: its ceiling
            rows.append(_row(name, stage, weights=w, pool_depth=pool_depth,
                             **_list_row(world, everyone, lists, contexts[stage], secs, ceiling)))
            timings[f"{name} [{stage}]_s"] = time.perf_counter() - t0

    meta: dict = {}
    if config.llm:
        client = product.client
        users = sample_users(split.n_users, config.llm_users, seed)
        fused_worlds = {stage: world.with_weights(weights, pool_depth) for stage, world in worlds.items()}
        reader = ClaimReader(catalog, product.features)
        extra = {"users": users, "item_index": split.item_index, "catalog": catalog, "reader": reader,
                 "k": config.rerank_k}
        records = {}
        if config.rerank:
            fingerprint = _fingerprint(
                client.model_id, client.temperature, seed, weights, pool_depth, config.rerank_k,
                settings.rerank.model_dump(), settings.profile.model_dump(), features_digest(product.features),
                [load_prompt(n).hash for n in ("user_profile", "rerank")], reply_budget(config.rerank_k),
                REASON_MAX_CHARS, RECORD_VERSION)
            for stage, world in fused_worlds.items():
                t0 = time.perf_counter()
                log = rerank_log(runs_dir / "rerank-records" / f"{fingerprint}-{stage}.jsonl")
                records[stage] = run_rerank(world, users, log, config.rerank_k,
                                            bar(f"LLM rerank [{stage}]", len(users)))
                timings[f"llm_rerank [{stage}]_s"] = time.perf_counter() - t0
            llm_weight, tried = select_llm_weight(records["valid"])
            selection["llm_weight"] = {"chosen": llm_weight, "tried_on_validation": tried}
            say(f"LLM blend weight chosen on validation: {llm_weight}")
        explained = {}
        explain_fingerprint = _fingerprint(
            client.model_id, client.temperature, seed, weights, pool_depth, config.rerank_k,
            settings.explain.model_dump(), load_prompt("explain").hash, features_digest(product.features),
            settings.rerank.reorder, EXPLAIN_RECORD_VERSION)  # with rerank.reorder the model's order is shown
        for stage, world in fused_worlds.items():
            t0 = time.perf_counter()
            log = explain_log(runs_dir / "explain-records" / f"{explain_fingerprint}-{stage}.jsonl")
            explained[stage] = run_explained(world, users, log, config.rerank_k,
                                             bar(f"explained answer [{stage}]", len(users)))
            timings[f"explained [{stage}]_s"] = time.perf_counter() - t0
        for stage in ("valid", "test"):
            lists, _ = retrieval_lists(fused_worlds[stage], users, 100)
            rows.append(_row("Fused retrieval (LLM users)", stage, **_list_row(worlds[stage], users, lists, contexts[stage])))
            context = {**extra, "context": contexts[stage]}
            if config.rerank:
                rows.append(_row(f"Fused + LLM rerank (w={llm_weight})", stage,
                                 **rerank_row(records[stage], llm_weight, **context)))
                rows.append(_row("LLM order alone (w=1)", stage, **rerank_row(records[stage], 1.0, **context)))
            rows.append(_row(EXPLAINED_ROW, stage, **explained_row(explained[stage], **context)))
        model_path = getattr(client.backend, "model_path", None)
        meta["llm"] = {
            "model_id": client.model_id,
            "model_file": model_path.name if model_path else None,
            "model_sha256": file_sha256(model_path) if model_path else None,
            "temperature": client.temperature,
            "seed": client.seed,
            "users_per_split": len(users),
            "rerank": settings.rerank.model_dump(),
            "profile": settings.profile.model_dump(),
            "explain": settings.explain.model_dump(),
            "item_features": len(product.features),
            "stats_this_run": client.stats.summary(),
        }
    meta.update({
        "protocol": "A",
        "dataset": source.meta(),
        "split": {"users": split.n_users, "items": split.n_items, "interactions": split.n_interactions},
        "seed": seed,
        "intervals": "95% percentile bootstrap over users, 1,000 resamples seeded by the root seed",
        "groups": {s: c.describe_groups() for s, c in contexts.items()},
        "config": config.model_dump(),
        "fusion_fitted": settings.fusion.model_dump(),
        "embedder": product.embedder.name,
        "vector_store": f"{SPLIT_STORE} (catalog text only)",
        "prompt_hashes": {n: load_prompt(n).hash for n in ("user_profile", "rerank", "explain", "item_features")},
        "state_dir": runs_dir.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "wall_s": round(time.perf_counter() - started, 1),
    })
    return {"rows": rows, "selection": selection, "meta": meta}


__all__ = ["EvalConfig", "eval_settings", "run_protocol_a", "sample_users"]
