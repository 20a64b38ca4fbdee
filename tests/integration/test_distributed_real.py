"""The Ray feature and profile jobs with real components: a local Ray cluster started here, each worker
running the smallest packaged GGUF (SmolLM2-135M) in its own llama.cpp, on a slice of ml-latest-small."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from promptrec import Recommender
from promptrec.cli import app
from promptrec.distributed import ProfileStore, popular_items, run_feature_job, run_profile_job
from promptrec.knowledge import FeatureStore
from promptrec.settings import Settings
from promptrec.testing import dataset_slice, write_dataset_folder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_slice(movielens):
    return dataset_slice(movielens, n_users=4, max_history=30)


def test_cli_index_with_ray_extracts_features_on_workers_and_embeds_them(real_slice, tmp_path):
    folder = tmp_path / "data"
    write_dataset_folder(real_slice, folder)
    env = {"PROMPTREC_STATE_DIR": str(tmp_path / "state"), "PROMPTREC_LLM__N_THREADS": "1"}
    args = ["--dataset", str(folder), "--model", "small", "index", "--features", "6", "--ray", "local",
            "--workers", "2"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"Stored {len(real_slice.catalog)} item vectors" in result.output
    settings = Settings(state_dir=tmp_path / "state", dataset=str(folder), llm={"model": "small"})
    store = FeatureStore(Recommender(settings, llm=False).features.path)  # where the CLI's run wrote them
    lines = [json.loads(line) for line in store.path.read_text().splitlines()]
    wanted = {i.item_id for i in popular_items(real_slice, 6)}
    assert {r["item_id"] for r in lines} == wanted and len(lines) == 6  # once each
    assert all(r["model_id"].startswith("SmolLM2-135M-Instruct") for r in lines)
    assert len(store) >= 3  # the grammar-constrained small model fills the schema for most items
    again = CliRunner().invoke(app, args, env=env)
    assert again.exit_code == 0 and "'already_done': 6" in again.output, again.output
    assert len(store.path.read_text().splitlines()) == 6


def test_profile_job_with_the_real_model(real_slice, tmp_path):
    import ray

    settings = Settings(state_dir=tmp_path, llm={"model": "small", "n_threads": 1}, profile={"token_budget": 200})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        store = ProfileStore(tmp_path / "profiles.jsonl")
        users = real_slice.interactions.users[:3]
        report = run_profile_job(settings, real_slice, users, store, workers=2, shard_size=2)
        assert report.written == 3 and report.lost_shards == 0 and len(report.per_worker) >= 1
        for user in users:
            result = store.get(user).result
            assert result.profile.summary and 0 < result.history_used <= len(real_slice.interactions.history(user))
        features = FeatureStore(tmp_path / "features.jsonl")
        job = run_feature_job(settings, popular_items(real_slice, 4), features, workers=2, shard_size=2)
        assert job.written == 4 and job.items_per_s > 0
    finally:
        ray.shutdown()
