"""The whole evaluation path on a dataset folder, as CI runs it: `eval/run.py --dataset` in a real
subprocess on a small synthetic folder, with the real MiniLM embedder, a real Chroma store and the
LLM stage with the real SmolLM2 on 2 users; then a rerun served entirely from the reply cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptrec.evaluation.source import dataset_digest
from promptrec.testing import tiny_dataset, with_users, write_dataset_folder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_eval(folder: Path, state: Path, out: Path) -> dict:
    env = {**os.environ, "PROMPTREC_STATE_DIR": str(state), "PROMPTREC_RERANK__DEPTH": "5",
           "PROMPTREC_PROFILE__TOKEN_BUDGET": "100", "PROMPTREC_LLM__TEMPERATURE": "0.2"}
    done = subprocess.run(
        [sys.executable, str(REPO / "eval" / "run.py"), "--dataset", str(folder), "--llm", "small", "--users", "2",
         "--folds", "1", "--k", "3", "--name", "ci", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "ci.json").read_text())


def test_eval_run_on_a_dataset_folder_and_identical_cached_rerun(tmp_path):
    data = with_users(tiny_dataset(n_users=60, items_per_genre=8))  # a users file: demographic groups
    folder = tmp_path / "tiny-movies"
    write_dataset_folder(data, folder)
    state = tmp_path / "state"
    first = run_eval(folder, state, tmp_path / "results")

    meta = first["meta"]
    assert meta["dataset"]["name"] == "tiny-movies" and meta["dataset"]["interactions"] == len(data.interactions)
    from promptrec.data import load_folder

    assert meta["dataset"]["sha256"] == dataset_digest(load_folder(folder))
    assert f"Dataset tiny-movies (sha256 {meta['dataset']['sha256'][:12]})" in (tmp_path / "results" / "ci.md").read_text()
    names = {(row["name"], row["split"]) for row in first["rows"]}
    for split in ("valid", "test"):
        assert ("ClassicBlend", split) in names and ("Embedding only (Chroma)", split) in names
        assert ("Fused retrieval", split) in names and ("LLM order alone (w=1)", split) in names
        assert ("Fused + model reasons (product)", split) in names
    rerank = [r for r in first["rows"] if r["name"].startswith("Fused + LLM rerank")]
    assert len(rerank) == 2 and all(r["metrics"]["n_users"] == 2 for r in rerank)
    for row in rerank:
        for key in ("N@10", "R@10", "grounding_rate", "fallback_rate", "rerank_invalid_rate", "latency_p95_s",
                    "llm_calls", "prompt_tokens", "completion_tokens", "faithfulness", "leak_rate",
                    "distinct_cited_per_list", "gini", "long_tail_share"):
            assert key in row["metrics"]
        assert row["intervals"]["N@10"] is not None and row["intervals"]["grounding_rate"] is not None
        assert {"target_tier", "activity", "attribute:gender", "attribute:age"} <= set(row["groups"])
    for row in first["rows"]:  # every row: intervals and groups
        assert row["intervals"]["N@10"] is not None and "target_tier" in row["groups"], row["name"]
    text = (tmp_path / "results" / "ci.md").read_text()
    assert "## Beyond accuracy" in text and "N@10 by gender (from the users file)" in text and "faithfulness" in text
    llm = meta["llm"]
    assert llm["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and len(llm["model_sha256"]) == 64
    assert llm["temperature"] == 0.2 and llm["rerank"]["depth"] == 5 and llm["profile"]["token_budget"] == 100
    assert llm["stats_this_run"]["calls"] >= 4 and set(meta["prompt_hashes"]) >= {"rerank", "user_profile"}
    assert 0.0 <= first["selection"]["llm_weight"]["chosen"] <= 1.0

    # the eval's state is ours, under the state dir, keyed by the dataset's content
    runs = state / "eval" / f"tiny-movies-{meta['dataset']['sha256'][:12]}"
    assert meta["state_dir"] == runs.name and (runs / "chroma").is_dir() and (runs / "collab").is_dir()
    records = sorted((runs / "rerank-records").glob("*.jsonl"))
    explained = sorted((runs / "explain-records").glob("*.jsonl"))
    assert len(records) == 2 and len(explained) == 2
    assert not any(p.name.startswith(".") for p in folder.iterdir() if p.is_dir())
    assert sorted(p.name for p in folder.iterdir()) == ["interactions.csv", "items.csv", "users.csv"]  # nothing written there

    # a rerun without the per-user records is served entirely from the LLM cache
    for path in [*records, *explained]:
        path.unlink()
    second = run_eval(folder, state, tmp_path / "results")
    assert second["meta"]["llm"]["stats_this_run"]["calls"] == 0
    cost = ("latency", "llm_calls", "_tokens")  # what this run spent differs; every quality figure must not

    def quality(rows):
        return [{**r, **{part: {k: v for k, v in r[part].items() if not any(c in k for c in cost)}
                         for part in ("metrics", "intervals")}} for r in rows]

    assert quality(second["rows"]) == quality(first["rows"])
    assert all(r["metrics"]["llm_calls"] == 0 for r in second["rows"] if "llm_calls" in r["metrics"])
    assert (tmp_path / "results" / "ci.png").stat().st_size > 0
