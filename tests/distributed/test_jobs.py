"""Distributed jobs on a real local Ray cluster (started here), with scripted backends on the workers."""

import json

import pytest
import ray

from promptrec import Recommender
from promptrec.distributed import ProfileStore, popular_items, run_feature_job, run_profile_job, shards
from promptrec.knowledge import FeatureStore
from promptrec.llm import LLMCache, LLMClient, ScriptedLLM
from promptrec.retrieval.store import make_client
from promptrec.testing import valid_reply
from promptrec.testing.distributed import FailOnce, scripted_backend


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def lines(store):
    return [json.loads(line)["item_id"] for line in store.path.read_text().splitlines()]


def test_shards_cut_work_in_order():
    assert shards(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_feature_job_writes_one_record_per_item_from_the_workers(settings, tiny):
    store = FeatureStore(settings.state_dir / "features.jsonl")
    items = popular_items(tiny, 10)
    seen = []
    report = run_feature_job(settings, items + items[:2], store, workers=2, shard_size=3,
                             backend_factory=scripted_backend, progress=seen.append)
    assert report.requested == 10 and report.written == 10 and report.failed == 0 and report.lost_shards == 0
    assert report.shards == 4 and sum(seen) == 10 and sum(report.per_worker.values()) == 10
    assert sorted(lines(store)) == sorted(i.item_id for i in items)
    reread = FeatureStore(store.path)
    for item in items:  # each record answers its own item's prompt
        assert reread.get(item.item_id).description.startswith("About " + item.title)
    again = run_feature_job(settings, items, FeatureStore(store.path), backend_factory=scripted_backend)
    assert again.already_done == 10 and again.written == 0 and len(lines(store)) == 10


@pytest.mark.parametrize("mode", ["exit", "raise"])
def test_a_dead_worker_or_a_raising_task_is_retried_without_duplicates(settings, tiny, tmp_path, mode):
    store = FeatureStore(settings.state_dir / "features.jsonl")
    items = popular_items(tiny, 12)
    marker = tmp_path / "failed-once"
    report = run_feature_job(settings, items, store, workers=2, shard_size=4,
                             backend_factory=FailOnce(marker, mode, after=1))
    assert marker.exists()  # the fault happened
    assert report.written == 12 and report.lost_shards == 0 and report.duplicates_skipped == 0
    ids = lines(store)
    assert len(ids) == 12 and set(ids) == {i.item_id for i in items}


def test_a_lost_shard_is_redone_by_the_next_run(settings, tiny, tmp_path):
    store = FeatureStore(settings.state_dir / "features.jsonl")
    items = popular_items(tiny, 8)
    first = run_feature_job(settings, items, store, workers=1, shard_size=4, max_retries=0,
                            backend_factory=FailOnce(tmp_path / "m", "raise"))
    assert first.lost_shards == 1 and first.written == 4 and len(lines(store)) == 4
    second = run_feature_job(settings, items, FeatureStore(store.path), workers=2, shard_size=4,
                             backend_factory=scripted_backend)
    assert second.already_done == 4 and second.written == 4
    assert sorted(lines(store)) == sorted(i.item_id for i in items)


def test_an_interrupted_driver_keeps_finished_shards_and_resumes(settings, tiny):
    store = FeatureStore(settings.state_dir / "features.jsonl")
    items = popular_items(tiny, 9)

    def stop(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_feature_job(settings, items, store, workers=1, shard_size=3, backend_factory=scripted_backend,
                        progress=stop)
    assert len(lines(store)) == 3
    report = run_feature_job(settings, items, FeatureStore(store.path), workers=2, shard_size=3,
                             backend_factory=scripted_backend)
    assert report.already_done == 3 and report.written == 6
    assert sorted(lines(store)) == sorted(i.item_id for i in items)


def test_profile_job_profiles_users_and_the_recommender_reuses_them(settings, tiny, hash_embedder):
    store = ProfileStore(settings.state_dir / "profiles.jsonl")
    users = ["1", "2", "3", "4", "5"]
    report = run_profile_job(settings, tiny, users, store, workers=2, shard_size=2, backend_factory=scripted_backend)
    assert report.written == 5 and report.failed == 0 and report.shards == 3
    for user in users:
        record = ProfileStore(store.path).get(user)
        assert record.result.source == "llm"
        assert record.result.profile.summary == f"Profiled from {record.result.history_used} items."
    assert run_profile_job(settings, tiny, users, store, backend_factory=scripted_backend).already_done == 5
    # the workers' replies are in the shared LLM cache: the recommender finds user 2's profile there
    client = LLMClient(ScriptedLLM(default=valid_reply), LLMCache(settings.llm_cache_path))
    rec = Recommender(settings, dataset=tiny, llm=client, embedder=hash_embedder,
                      chroma_client=make_client(settings.state_dir / "chroma"))
    result = rec.recommend("2", k=3)
    assert result.profile.profile.summary == store.get("2").result.profile.summary
    assert client.stats.cache_hits == 1


def test_profile_job_rejects_unknown_users(settings, tiny):
    from promptrec.errors import UserInputError

    with pytest.raises(UserInputError, match="unknown users: 999"):
        run_profile_job(settings, tiny, ["1", "999"], ProfileStore(settings.state_dir / "p.jsonl"))


def test_cli_offers_ray_for_index_and_profile():
    from typer.testing import CliRunner

    from promptrec.cli import app

    runner = CliRunner()
    index = runner.invoke(app, ["index", "--help"], env={"COLUMNS": "200"})
    assert index.exit_code == 0 and "--ray" in index.output and "--workers" in index.output
    profile = runner.invoke(app, ["profile", "--help"], env={"COLUMNS": "200"})
    assert profile.exit_code == 0 and "--users" in profile.output and "--ray" in profile.output


def test_shards_go_round_robin_over_several_model_servers(settings, tiny):
    from promptrec.testing.distributed import url_backend

    llm = settings.llm.model_copy(update={"backend": "openai", "base_url": "http://a:1/v1, http://b:2/v1"})
    store = FeatureStore(settings.state_dir / "features.jsonl")
    items = popular_items(tiny, 8)
    run_feature_job(settings.model_copy(update={"llm": llm}), items, store, workers=2, shard_size=2,
                    backend_factory=url_backend)
    records = store.records()
    for number in range(4):
        shard = items[number * 2:number * 2 + 2]
        expected = "scripted@http://a:1/v1" if number % 2 == 0 else "scripted@http://b:2/v1"
        assert {records[i.item_id].model_id for i in shard} == {expected}
