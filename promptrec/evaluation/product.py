"""Protocol A for the product's own stages, on the same split as the classic baselines:
embedding-only retrieval, fused retrieval, and fused retrieval + LLM rerank.

Each stage is an :class:`~promptrec.engine.Engine` built by :func:`~promptrec.engine.build_engine`
(the factory :class:`~promptrec.pipeline.Recommender` uses) from the product's settings, embedder,
model client and feature store, over the split's items, with collaborative models fitted only on
the data available at that stage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Catalog, Dataset, InteractionLog
from ..engine import Engine, build_engine, fit_collab, fit_new_item_source, index_records
from ..knowledge import FeatureStore
from ..llm import LLMClient
from ..retrieval import ItemVectorStore, fuse
from ..retrieval.fusion import restrict_pool
from ..retrieval.store import make_client
from ..settings import Settings
from ..types import History
from .metrics import evaluate_rankings
from .splits import LeaveLastOutSplit, Stage


def split_catalog(split: LeaveLastOutSplit, dataset: Dataset) -> Catalog:
    """The split's items (the k-core catalog) with their texts."""
    return Catalog(dataset.catalog[i] for i in split.items)


def stage_log(split: LeaveLastOutSplit, stage: Stage) -> InteractionLog:
    """Every user's history available at ``stage`` as an interaction log (targets left out)."""
    users, items, times = [], [], []
    for u, user in enumerate(split.users):
        history = split.history(u, stage)
        users += [user] * len(history)
        items += [split.items[i] for i in history]
        times += split.history_times(u, stage).tolist()
    frame = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times, "rating": np.nan})
    return InteractionLog(frame)


def ratings_by_user(log: InteractionLog) -> dict[str, dict[str, float]]:
    """Every user's ratings (item id -> rating), where rated."""
    frame = log.frame.dropna(subset=["rating"])
    return {str(user): dict(zip(group["item_id"], group["rating"].astype(float)))
            for user, group in frame.groupby("user_id", sort=False)}


def index_split_items(store: ItemVectorStore, catalog: Catalog, features: FeatureStore | None = None) -> int:
    """Embed the split's items from the texts the product embeds (unchanged items are skipped)."""
    return store.upsert(index_records(catalog, features))


SPLIT_STORE = "split-items-text"


def split_store(chroma_dir: Path, embedder, catalog: Catalog) -> ItemVectorStore:
    """The evaluation's vector store of the split's items, embedded from the catalog text alone
    (title, genres, tags), never from a feature store: a feature job filling that store in the
    background must not move an evaluation's figures. Model knowledge enters an evaluation only
    through what a run names (a knowledge model's signals, the rerank prompt)."""
    store = ItemVectorStore(make_client(Path(chroma_dir)), embedder, SPLIT_STORE)
    index_split_items(store, catalog)
    return store


@dataclass
class Bench:
    """What every stage of one evaluation shares with the product: its settings, embedder, model
    client and feature store, plus the split's items, their store and the users' ratings."""

    settings: Settings
    catalog: Catalog
    store: ItemVectorStore
    embedder: object
    client: LLMClient | None
    features: FeatureStore | None
    ratings: Mapping[str, Mapping[str, float]]


@dataclass
class StageWorld:
    """The product's engine for one stage of a split, by user index.

    ``valid`` fits on train; ``test`` fits on train + validation items. Build it with :func:`stage_world`.
    """

    split: LeaveLastOutSplit
    stage: Stage
    engine: Engine
    ratings: Mapping[str, Mapping[str, float]]

    @property
    def retriever(self):
        return self.engine.retriever

    @property
    def fusion(self):
        return self.engine.fusion

    def history(self, u: int) -> History:
        """User ``u``'s history at this stage, with the ratings of those items."""
        items = [self.split.items[i] for i in self.split.history(u, self.stage)]
        rated = self.ratings.get(self.split.users[u], {})
        return History(items=items, timestamps=self.split.history_times(u, self.stage).tolist(),
                       ratings={i: rated[i] for i in items if i in rated})

    def target(self, u: int) -> str:
        return self.split.items[int(self.split.targets(self.stage)[u])]

    def with_weights(self, weights: Mapping[str, float], pool_depth: int | None = None) -> StageWorld:
        """The same world with other fusion weights and pool depth (the fitted models are shared)."""
        return replace(self, engine=self.engine.with_fusion(weights, pool_depth))


def stage_world(split: LeaveLastOutSplit, stage: Stage, bench: Bench, cache_dir: Path) -> StageWorld:
    """The engine :func:`~promptrec.engine.build_engine` makes from ``bench.settings`` for ``stage``:
    collaborative models fitted on that stage's data (cached in ``cache_dir``/``stage``)."""
    log = stage_log(split, stage)
    collab = fit_collab(bench.settings.fusion, log, Path(cache_dir) / stage)
    new_items = fit_new_item_source(bench.settings, log, bench.catalog, bench.store, collab, Path(cache_dir) / stage,
                                    bench.features)
    engine = build_engine(bench.settings, catalog=bench.catalog, store=bench.store, embedder=bench.embedder,
                          collab=collab, client=bench.client, features=bench.features, new_items=new_items)
    return StageWorld(split, stage, engine, bench.ratings)


def rank_of(item: str, ranked: Sequence[str]) -> float:
    try:
        return float(list(ranked).index(item))
    except ValueError:
        return np.inf


def retrieval_lists(world: StageWorld, users: Sequence[int], depth: int = 100,
                    progress=None) -> tuple[list[list[str]], list[float]]:
    """Each user's ranked list from the world's retriever, and the seconds each took."""
    lists, seconds = [], []
    for u in users:
        history = world.history(u)
        start = time.perf_counter()
        lists.append([c.item_id for c in world.retriever.retrieve(history, depth=depth, evidence_for=0)])
        seconds.append(time.perf_counter() - start)
        if progress:
            progress(1)
    return lists, seconds


def list_metrics(world: StageWorld, users: Sequence[int], lists: Sequence[Sequence[str]],
                 popularity: np.ndarray | None = None, k: int = 10) -> dict[str, float]:
    """Protocol A metrics of ranked item-id lists (targets not in a list count as misses)."""
    index = world.split.item_index
    ranks = np.array([rank_of(world.target(u), ranked) for u, ranked in zip(users, lists)])
    recs = [np.array([index[i] for i in ranked[:k]], dtype=np.int64) for ranked in lists]
    return evaluate_rankings(ranks, rec_lists=recs, n_items=world.split.n_items, popularity_counts=popularity)


def collect_pools(world: StageWorld, users: Sequence[int], progress=None) -> list[tuple[list[str], dict[str, np.ndarray]]]:
    """Every user's candidate pool with every source's raw scores, for fast weight selection."""
    pools = []
    for u in users:
        pools.append(world.retriever.pool(world.history(u), every_source=True))
        if progress:
            progress(1)
    return pools


def pool_ranks(pools, targets: Sequence[str], weights: Mapping[str, float]) -> np.ndarray:
    """Target ranks after fusing each pool with ``weights``."""
    ranks = np.full(len(pools), np.inf)
    for n, ((items, sources), target) in enumerate(zip(pools, targets)):
        if target not in items:
            continue
        fused, _ = fuse(sources, weights)
        order = np.argsort(-fused, kind="stable")
        position = int(np.nonzero(np.array(items)[order] == target)[0][0])
        ranks[n] = position
    return ranks


def select_fusion(pools, targets: Sequence[str], grid: Sequence[Mapping[str, float]],
                  depths: Sequence[int | None] = (None,), k: int = 10) -> tuple[dict[str, float], int | None, list[dict]]:
    """The (weights, pool depth) with the best N@k on these (validation) pools; ties go to the earlier
    entry (depths outer, weights inner). ``None`` as a depth uses the pools as collected."""
    rows, choices = [], []
    for depth in depths:
        for weights in grid:
            restricted = [restrict_pool(items, sources, weights, depth) for items, sources in pools]
            metrics = evaluate_rankings(pool_ranks(restricted, targets, weights), ks=(k,))
            rows.append({"weights": dict(weights), "pool_depth": depth,
                         f"N@{k}": metrics[f"N@{k}"], f"R@{k}": metrics[f"R@{k}"]})
            choices.append((dict(weights), depth))
    best = max(range(len(rows)), key=lambda n: (rows[n][f"N@{k}"], -n))
    return choices[best][0], choices[best][1], rows


def select_weights(pools, targets: Sequence[str], grid: Sequence[Mapping[str, float]],
                   k: int = 10) -> tuple[dict[str, float], list[dict]]:
    """The weights in ``grid`` with the best N@k on these (validation) pools; ties go to the earlier entry."""
    weights, _, rows = select_fusion(pools, targets, grid, (None,), k)
    return weights, rows
