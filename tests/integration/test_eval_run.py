"""The whole evaluation path in a small configuration: real data, real SmolLM2, real Chroma."""

import pytest

from promptrec.evaluation.report import write_report
from promptrec.evaluation.runner import EvalConfig, run_protocol_a
from promptrec.settings import Settings

pytestmark = pytest.mark.integration


def test_protocol_a_small_run_and_identical_cached_rerun(tmp_path):
    settings = Settings(state_dir=tmp_path / "state")
    config = EvalConfig(name="ci", classic=False, folds=1, retrieval_users=25, embedding_weights=[0.0, 0.1],
                        pool_depths=[20, 50],
                        llm_model="small", llm_users=2, rerank_depth=8, rerank_k=5, profile_budget=150)
    first = run_protocol_a(config, settings, tmp_path / "runs", say=lambda line: None)
    names = {(row["name"], row["split"]) for row in first["rows"]}
    for split in ("valid", "test"):
        assert ("Embedding only (Chroma)", split) in names and ("Fused retrieval", split) in names
        assert ("Fused retrieval (LLM users)", split) in names and ("LLM order alone (w=1)", split) in names
    rerank = [r for r in first["rows"] if r["name"].startswith("Fused + LLM rerank")]
    assert len(rerank) == 2 and all(r["metrics"]["n_users"] == 2 for r in rerank)
    for row in rerank:
        for key in ("N@10", "R@10", "grounding_rate", "fallback_rate", "rerank_invalid_rate", "latency_p95_s",
                    "llm_calls", "prompt_tokens", "completion_tokens"):
            assert key in row["metrics"]
    meta = first["meta"]
    assert meta["llm"]["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and len(meta["llm"]["model_sha256"]) == 64
    assert meta["llm"]["stats_this_run"]["calls"] >= 4 and set(meta["prompt_hashes"]) >= {"rerank", "user_profile"}
    assert 0.0 <= first["selection"]["llm_weight"]["chosen"] <= 1.0
    fusion = first["selection"]["fusion_weights"]
    assert fusion["pool_depth"] in (20, 50) and len(fusion["tried_on_validation"]) == 4

    # a rerun without the per-user records is served entirely from the LLM cache
    for records in (tmp_path / "runs" / "rerank-records").glob("*.jsonl"):
        records.unlink()
    second = run_protocol_a(config, settings, tmp_path / "runs", say=lambda line: None)
    assert second["meta"]["llm"]["stats_this_run"]["calls"] == 0
    cost = ("latency", "llm_calls", "_tokens")  # what this run spent differs; every quality figure must not

    def quality(rows):
        return [{**r, "metrics": {k: v for k, v in r["metrics"].items() if not any(c in k for c in cost)}} for r in rows]

    assert quality(second["rows"]) == quality(first["rows"])
    assert all(r["metrics"]["llm_calls"] == 0 for r in second["rows"] if "llm_calls" in r["metrics"])

    paths = write_report(tmp_path / "results", "ci", first)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
