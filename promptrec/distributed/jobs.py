"""The jobs: item features and user profiles, one Ray task per shard, records written by the driver."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext

from filelock import FileLock, Timeout

from ..data import Dataset, Item
from ..errors import ConfigError, UserInputError
from ..knowledge import FeatureRecord, FeatureStore, ItemFeatureExtractor, UserProfiler
from ..llm import LLMBackend, LLMClient, make_backend, make_client
from ..settings import Settings
from .profiles import ProfileRecord, ProfileStore, history_key
from .runner import JobReport, run_shards, shards, write_once

BackendFactory = Callable[[Settings], LLMBackend]
_CLIENTS: dict[str, LLMClient] = {}  # one per worker process and configuration: the model loads once


def server_for(settings: Settings, shard: int) -> Settings:
    """The settings for shard number ``shard``: with the OpenAI-compatible backend and several base URLs
    (comma-separated: one model server each), shards go round-robin over the servers."""
    urls = [u.strip() for u in (settings.llm.base_url or "").split(",") if u.strip()]
    if len(urls) < 2:
        return settings
    llm = settings.llm.model_copy(update={"base_url": urls[shard % len(urls)]})
    return settings.model_copy(update={"llm": llm})


def _worker_client(settings: Settings, factory: BackendFactory | None) -> LLMClient:
    from ray import cloudpickle

    key = hashlib.sha256(settings.model_dump_json().encode() + cloudpickle.dumps(factory)).hexdigest()
    if key not in _CLIENTS:
        backend = factory(settings) if factory else make_backend(settings)
        _CLIENTS[key] = make_client(settings, backend)
    return _CLIENTS[key]


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def feature_shard(shard: tuple[int, list[Item]], settings: Settings, factory: BackendFactory | None,
                  max_tokens: int) -> tuple[str, list[FeatureRecord]]:
    """A Ray task: features for a numbered shard of items, from this worker's own model."""
    number, items = shard
    client = _worker_client(server_for(settings, number), factory)
    extractor = ItemFeatureExtractor(client, None, max_tokens=max_tokens, style=settings.features.style)
    return _worker_name(), [extractor.extract_one(item) for item in items]


def profile_shard(shard: tuple[int, list[tuple[str, list[str], dict[str, float]]]], settings: Settings, catalog,
                  factory: BackendFactory | None) -> tuple[str, list[ProfileRecord]]:
    """A Ray task: profiles for a numbered shard of (user id, history, ratings)."""
    number, users = shard
    client = _worker_client(server_for(settings, number), factory)
    profiler = UserProfiler(client, catalog, settings.profile.token_budget)
    model_id = profiler.client.model_id
    records = []
    for user, history, ratings in users:
        with _owned_by(user):
            result = _profile(profiler, history, ratings)
        records.append(ProfileRecord(user_id=user, result=result, history_key=history_key(history),
                                     model_id=model_id, template_hash=profiler.template.hash))
    return _worker_name(), records


def _owned_by(user: str):
    """Tag the cached replies of ``user``'s profile with the user, so ``forget`` finds them (where the
    privacy module exists: it arrives with the state-privacy branch)."""
    try:
        from ..llm.cache import cache_owner
        from ..privacy import user_tag
    except ImportError:
        return nullcontext()
    return cache_owner(user_tag(user))


def _profile(profiler: UserProfiler, history: list[str], ratings: dict[str, float]):
    """``profiler.profile`` across both its signatures: ``(items, ratings)``, and ``(History)`` since the
    engine branch typed histories (one line to drop once both are merged)."""
    try:
        from ..types import History
    except ImportError:
        return profiler.profile(history, ratings)
    return profiler.profile(History(items=history, ratings=ratings))


@contextmanager
def _exclusive(path) -> Iterator[None]:
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=1)
    except Timeout:
        raise ConfigError(f"another promptrec process is writing {path}; wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


def popular_items(dataset: Dataset, n: int) -> list[Item]:
    """The ``n`` most interacted-with items (all when ``n`` < 0), most popular first; the order ``index`` uses."""
    counts = dataset.interactions.item_counts
    ranked = sorted(dataset.catalog, key=lambda it: (-int(counts.get(it.item_id, 0)), it.item_id))
    return ranked if n < 0 else ranked[:n]


def run_feature_job(settings: Settings, items: Sequence[Item], store: FeatureStore, *,
                    ray_address: str | None = None, workers: int = 2, shard_size: int = 4,
                    backend_factory: BackendFactory | None = None, max_tokens: int = 320,
                    max_retries: int = 3, progress: Callable[[int], None] | None = None) -> JobReport:
    """Model features for every item in ``items`` that has none yet, computed on a Ray cluster.

    Each worker builds the backend the settings name (its own llama.cpp model, or a client of an
    OpenAI-compatible server; several comma-separated base URLs spread the shards over several servers,
    see :func:`server_for`), or ``backend_factory(settings)``; the factory must be importable on the
    workers. Records reach ``store`` through its own ``append``, from this process only, as shards finish;
    an item already written (by this run or an earlier one) is never written again.

    Args:
        ray_address: A Ray cluster ("auto", "ray://head:10001"); None or "local" starts one here.
        workers: Shards in flight at once (one CPU each).
        shard_size: Items per Ray task.
        max_retries: Retries of a shard whose worker died or whose task raised.
    """
    unique = list({item.item_id: item for item in items}.values())
    todo = [item for item in unique if store.get(item.item_id) is None]
    report = JobReport(requested=len(unique), already_done=len(unique) - len(todo))
    # the workers ask the prompt of the store's style (closed or open), whatever the settings say
    settings = settings.model_copy(update={"features": settings.features.model_copy(update={"style": store.style})})

    write = write_once(store, key=lambda r: r.item_id, ok=lambda r: r.features is not None,
                       skip=lambda item_id: store.get(item_id) is not None)
    if progress and report.already_done:
        progress(report.already_done)
    if not todo:
        return report
    with _exclusive(store.path):
        return run_shards(feature_shard, list(enumerate(shards(todo, shard_size))), (settings, backend_factory, max_tokens), write,
                          ray_address=ray_address, workers=workers, max_retries=max_retries, progress=progress,
                          report=report)


def run_profile_job(settings: Settings, dataset: Dataset, user_ids: Sequence[str], store: ProfileStore, *,
                    ray_address: str | None = None, workers: int = 2, shard_size: int = 8,
                    backend_factory: BackendFactory | None = None, max_retries: int = 3,
                    progress: Callable[[int], None] | None = None) -> JobReport:
    """Profiles of ``user_ids`` (their whole history, within the settings' token budget) on a Ray cluster.

    A user whose stored profile was made from the same history is skipped. The workers' model replies go
    to the settings' LLM cache too, so when the workers share it with the recommender (one machine, or a
    shared state folder) ``Recommender.recommend`` later finds every profile there.
    """
    log_ = dataset.interactions
    unknown = [str(u) for u in user_ids if not log_.has_user(str(u))]
    if unknown:
        raise UserInputError(f"unknown users: {', '.join(unknown[:10])}")
    users = []
    for user in dict.fromkeys(str(u) for u in user_ids):
        history = log_.history(user)
        record = store.get(user)
        if record is None or record.history_key != history_key(history):
            users.append((user, history, log_.ratings(user)))
    report = JobReport(requested=len(set(map(str, user_ids))), already_done=len(set(map(str, user_ids))) - len(users))
    write = write_once(store, key=lambda r: r.user_id, ok=lambda r: r.result.source == "llm")

    if progress and report.already_done:
        progress(report.already_done)
    if not users:
        return report
    with _exclusive(store.path):
        return run_shards(profile_shard, list(enumerate(shards(users, shard_size))), (settings, dataset.catalog, backend_factory), write,
                          ray_address=ray_address, workers=workers, max_retries=max_retries, progress=progress,
                          report=report)
