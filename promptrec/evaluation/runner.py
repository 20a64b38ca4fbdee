"""One Protocol A run over every stage: classic baselines, embedding-only retrieval, fused
retrieval and fused retrieval + LLM rerank; every choice made on validation, test read once."""

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

from ..data import load_dataset
from ..llm import LLMCache, LLMClient, make_backend
from ..llm.resolve import file_sha256
from ..prompts import load_prompt
from ..rerank import REASON_MAX_CHARS, reply_budget
from ..retrieval import EMBEDDING, ItemVectorStore, make_embedder
from ..retrieval.store import make_client as make_chroma_client
from ..settings import FusionSettings, Settings
from .classic import classic_table
from .product import (StageWorld, collect_pools, index_split_items, list_metrics, retrieval_lists,
                      select_fusion, split_catalog)
from .rerank_eval import RecordLog, rerank_metrics, run_rerank, select_llm_weight
from .splits import protocol_a_split
from .tuning import validation_folds

Progress = Callable[[str, int], Callable[[int], None]]


class EvalConfig(BaseModel):
    """What one evaluation run does."""

    name: str = "protocol-a"
    seed: int = 0
    classic: bool = Field(True, description="Include the classic baselines (Pop, ItemKNN, EASE, sequential, blend).")
    embedding_weights: list[float] = Field(default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0],
                                           description="Embedding weights tried on validation (classic blend = 1).")
    folds: int = Field(3, description="Validation folds for the fusion weights (each holds out an earlier item).")
    retrieval_users: int | None = Field(None, description="Seeded sample for the retrieval stages (None: all users).")
    pool_depths: list[int] = Field(default_factory=lambda: [50, 100, 200],
                                   description="Candidate pool depths (top-N per source) tried on validation.")
    llm_model: str | None = Field(None, description="Local model for the rerank stage (None: no LLM stage).")
    llm_users: int = Field(50, description="Seeded sample of users for the LLM stage (per split).")
    rerank_depth: int = 20
    rerank_k: int = 10
    profile_budget: int = Field(500, description="Token budget of the profile in the rerank prompt; 0 = no profile.")
    history_items: int = 12


def sample_users(n_users: int, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_users, size=min(n, n_users), replace=False).tolist())


def _row(name: str, split: str, metrics: dict, **extra) -> dict:
    return {"name": name, "split": split, "metrics": metrics, **extra}


def run_protocol_a(config: EvalConfig, settings: Settings, runs_dir: Path, progress: Progress | None = None,
                   say: Callable[[str], None] = print) -> dict:
    """Run every stage and return the payload (rows, selections, meta) for :func:`write_report`."""
    started = time.perf_counter()
    bar = progress or (lambda label, total: (lambda n: None))
    dataset = load_dataset("ml-latest-small", settings.data_dir, settings.download)
    split = protocol_a_split(dataset.interactions.frame)
    say(f"split: {split.n_users} users, {split.n_items} items, {split.n_interactions} interactions")
    rows: list[dict] = []
    timings: dict[str, float] = {}
    selection: dict = {}

    if config.classic:
        t0 = time.perf_counter()
        from ..collab import classic_scorers

        for row in classic_table(split, classic_scorers()):
            metrics = {k: v for k, v in row.items() if k not in ("model", "stage")}
            rows.append(_row(str(row["model"]), str(row["stage"]), metrics))
        timings["classic_s"] = time.perf_counter() - t0

    catalog = split_catalog(split, dataset)
    embedder = make_embedder(settings.embedding.model, settings.embedding.batch_size)
    store = ItemVectorStore(make_chroma_client(runs_dir / "chroma"), embedder, "ml-latest-small-5core")
    t0 = time.perf_counter()
    index_split_items(store, catalog)
    timings["index_s"] = time.perf_counter() - t0
    fusion = FusionSettings(weights={EMBEDDING: 1.0, "classic": 1.0}, candidate_depth=max(config.pool_depths))
    worlds = {s: StageWorld(split, s, catalog, store, embedder, fusion, runs_dir / "collab") for s in ("valid", "test")}
    popularity = {s: np.asarray(split.fit_matrix(s).sum(axis=0)).ravel() for s in ("valid", "test")}
    everyone = (list(range(split.n_users)) if config.retrieval_users is None
                else sample_users(split.n_users, config.retrieval_users, config.seed))

    # fusion weights: chosen on validation pools of several folds (none touches a test item)
    t0 = time.perf_counter()
    pools, targets = [], []
    for n, fold in enumerate(validation_folds(split, config.folds)):
        world = worlds["valid"] if n == 0 else StageWorld(fold, "valid", catalog, store, embedder, fusion,
                                                            runs_dir / "collab" / f"fold{n}")
        fold_users = [u for u in range(fold.n_users) if fold.users[u] in {split.users[v] for v in everyone}]
        pools += collect_pools(world, fold_users, bar(f"validation pools, fold {n + 1}", len(fold_users)))
        targets += [world.target(u) for u in fold_users]
    grid = [{EMBEDDING: w, "classic": 1.0} for w in config.embedding_weights]
    weights, pool_depth, tried = select_fusion(pools, targets, grid, sorted(config.pool_depths))
    selection["fusion_weights"] = {"chosen": weights, "pool_depth": pool_depth, "folds": config.folds,
                                   "targets": len(targets), "tried_on_validation": tried}
    say(f"fusion weights and pool depth chosen on validation: {weights}, top {pool_depth} per source")
    timings["fusion_selection_s"] = time.perf_counter() - t0

    for stage, world in worlds.items():
        for name, w in (("Embedding only (Chroma)", {EMBEDDING: 1.0}), ("Fused retrieval", weights)):
            t0 = time.perf_counter()
            lists, secs = retrieval_lists(world.with_weights(w, pool_depth), everyone, 100, bar(f"{name} [{stage}]", len(everyone)))
            metrics = list_metrics(world, everyone, lists, popularity[stage])
            ceiling = config.rerank_depth  # the ceiling the rerank works under
            metrics["recall_at_rerank_depth"] = float(np.mean([world.target(u) in lst[:ceiling]
                                                               for u, lst in zip(everyone, lists)]))
            metrics.update({"latency_p50_s": float(np.median(secs)), "latency_p95_s": float(np.percentile(secs, 95))})
            rows.append(_row(name, stage, metrics, weights=w, pool_depth=pool_depth))
            timings[f"{name} [{stage}]_s"] = time.perf_counter() - t0

    meta: dict = {}
    if config.llm_model:
        llm_settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": config.llm_model})})
        backend = make_backend(llm_settings)
        client = LLMClient(backend, LLMCache(settings.llm_cache_path), seed=config.seed)
        users = sample_users(split.n_users, config.llm_users, config.seed)
        records = {}
        fingerprint = hashlib.sha256(json.dumps([
            client.model_id, weights, config.rerank_depth, config.rerank_k, config.profile_budget,
            config.history_items, [load_prompt(n).hash for n in ("user_profile", "rerank")],
            reply_budget(config.rerank_k), REASON_MAX_CHARS,
        ], sort_keys=True).encode()).hexdigest()[:12]
        for stage, world in worlds.items():
            t0 = time.perf_counter()
            log = RecordLog(runs_dir / "rerank-records" / f"{fingerprint}-{stage}.jsonl")
            records[stage] = run_rerank(world.with_weights(weights, pool_depth), users, client, dataset, log, config.rerank_depth,
                                        config.rerank_k, config.profile_budget, config.history_items,
                                        bar(f"LLM rerank [{stage}]", len(users)))
            timings[f"llm_rerank [{stage}]_s"] = time.perf_counter() - t0
        llm_weight, tried = select_llm_weight(records["valid"])
        selection["llm_weight"] = {"chosen": llm_weight, "tried_on_validation": tried}
        say(f"LLM blend weight chosen on validation: {llm_weight}")
        for stage in ("valid", "test"):
            fused_world = worlds[stage].with_weights(weights, pool_depth)
            lists, _ = retrieval_lists(fused_world, users, 100)
            sampled = list_metrics(worlds[stage], users, lists, popularity[stage])
            rows.append(_row("Fused retrieval (LLM users)", stage, sampled))
            extra = {"item_index": split.item_index, "n_items": split.n_items, "popularity": popularity[stage]}
            rows.append(_row(f"Fused + LLM rerank (w={llm_weight})", stage,
                             rerank_metrics(records[stage], llm_weight, **extra)))
            rows.append(_row("LLM order alone (w=1)", stage, rerank_metrics(records[stage], 1.0, **extra)))
        model_path = getattr(backend, "model_path", None)
        meta["llm"] = {
            "model_id": client.model_id,
            "model_file": model_path.name if model_path else None,
            "model_sha256": file_sha256(model_path) if model_path else None,
            "temperature": client.temperature,
            "users_per_split": len(users),
            "rerank_depth": config.rerank_depth,
            "stats_this_run": client.stats.summary(),
        }
    meta.update({
        "protocol": "A",
        "split": {"users": split.n_users, "items": split.n_items, "interactions": split.n_interactions},
        "seed": config.seed,
        "config": config.model_dump(),
        "embedder": embedder.name,
        "prompt_hashes": {n: load_prompt(n).hash for n in ("user_profile", "rerank", "item_features")},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "wall_s": round(time.perf_counter() - started, 1),
    })
    return {"rows": rows, "selection": selection, "meta": meta}


__all__ = ["EvalConfig", "run_protocol_a", "sample_users"]
