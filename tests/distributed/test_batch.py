"""Batch recommendation lists on a real local Ray cluster, one Recommender per worker."""

import pytest
import ray

from promptrec.distributed import ListStore, run_recommend_job
from promptrec.testing.distributed import TinyRecommender


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def settings_for_tiny(settings):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1,
                                                "params": {"ease": {"lambda_": 10.0}}})
    return settings.model_copy(update={"fusion": fusion})


def test_lists_from_the_workers_match_the_in_process_pipeline(settings):
    settings = settings_for_tiny(settings)
    store = ListStore(settings.state_dir / "lists.jsonl")
    users = ["1", "2", "3", "4", "5", "999"]
    report = run_recommend_job(TinyRecommender(settings), users, store, k=3, request="something",
                               workers=2, shard_size=2)
    assert report.written == 6 and report.failed == 1 and report.lost_shards == 0
    local = TinyRecommender(settings)()
    for user in users[:5]:
        expected = local.recommend(user, k=3, request="something")
        got = ListStore(store.path).records()[user].result
        assert [r.item_id for r in got.items] == [r.item_id for r in expected.items]
        assert got.ordered_by == "fusion" and all(r.explanation for r in got.items)  # the model explains the fused order
    assert "unknown user '999'" in store.records()["999"].error
    again = run_recommend_job(TinyRecommender(settings), users, ListStore(store.path), k=3)
    assert again.already_done == 6 and again.written == 0
    assert len(store.path.read_text().splitlines()) == 6
