"""Batch knowledge jobs with real components: SmolLM2 on llama.cpp's server engine with parallel slots
(xllamacpp), and the OpenAI backend's bounded concurrent requests to a real loopback llama_cpp.server."""

from __future__ import annotations

import pytest

from promptrec.distributed.profiles import ProfileStore
from promptrec.knowledge import FeatureStore
from promptrec.knowledge.batch import DEGENERATE, run_feature_batch, run_profile_batch
from promptrec.llm import LLMCache, LLMClient, resolve_gguf
from promptrec.llm.openai_backend import OpenAIBackend
from promptrec.llm.parallel import ParallelLlamaBackend
from promptrec.llm.resolve import fingerprint
from promptrec.testing import llama_server

pytestmark = pytest.mark.integration


def _items(movielens, n):
    counts = movielens.interactions.item_counts
    return sorted(movielens.catalog, key=lambda it: (-int(counts.get(it.item_id, 0)), it.item_id))[:n]


def _check_records(store, items):
    for item in items:
        record = store.record(item.item_id)
        assert record is not None
        # schema-valid features, or a stated reason (invalid reply or degenerate): never both, never neither
        assert (record.features is None) == bool(record.error)


def test_parallel_slots_featurize_and_profile_with_smollm2(movielens, tmp_path):
    path = resolve_gguf("small", tmp_path / "models")
    backend = ParallelLlamaBackend(path, n_parallel=3, n_ctx_per_slot=2048, n_threads=2)
    assert backend.model_id == f"{path.name}@{fingerprint(path)}"  # the in-process backend's name: same stores
    cache = LLMCache(tmp_path / "cache.sqlite")
    items = _items(movielens, 3)
    store = FeatureStore(tmp_path / "f.jsonl")
    report = run_feature_batch(LLMClient(backend, cache), items, store)
    assert report.workers == 3 and report.processed == 3 and report.model_calls == 3
    assert report.completion_tokens > 0 and report.failed + report.done + sum(report.rejected.values()) == 3
    _check_records(store, items)
    again = run_feature_batch(LLMClient(backend, cache), items, FeatureStore(tmp_path / "f.jsonl"))
    assert again.model_calls == 0  # a rerun asks the model nothing: every reply is cached

    users = [(u, movielens.interactions.history(u)[-8:], {}) for u in ("1", "2")]
    profiles = ProfileStore(tmp_path / "p.jsonl")
    report = run_profile_batch(LLMClient(backend, cache), movielens.catalog, users, profiles, token_budget=200)
    assert report.processed == 2 and report.model_calls == 2
    for user, _, _ in users:
        result = profiles.get(user).result
        assert result.source == "llm" or result.error  # a fallback says why (invalid or degenerate reply)
        assert result.source == "llm" or result.error.startswith(DEGENERATE) or "invalid" in result.error \
            or "failed" in result.error or result.rejected  # refused by the profile quality gate, with its reason


def test_openai_backend_sends_bounded_concurrent_requests_to_a_local_server(movielens, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    tmp = tmp_path_factory.mktemp("batch")
    with llama_server(tmp_path_factory.mktemp("models"), log, n_ctx=2048) as url:
        backend = OpenAIBackend("smol", base_url=url, max_concurrency=2)
        client = LLMClient(backend, LLMCache(tmp / "cache.sqlite"))
        items = _items(movielens, 3)
        store = FeatureStore(tmp / "f.jsonl")
        report = run_feature_batch(client, items, store)
        assert report.workers == 2 and report.model_calls == 3 and report.processed == 3
        _check_records(store, items)
        again = run_feature_batch(client, items, FeatureStore(tmp / "f.jsonl"))
        assert again.model_calls == 0
