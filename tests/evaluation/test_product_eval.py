"""The product stages under Protocol A, on the tiny synthetic dataset with fakes."""

import numpy as np
import pytest

from promptrec.evaluation.position_bias import run_position_bias, summarize
from promptrec.evaluation.product import (StageWorld, collect_pools, index_split_items, list_metrics, pool_ranks,
                                          rank_of, retrieval_lists, select_weights, split_catalog, stage_log)
from promptrec.evaluation.report import write_report
from promptrec.evaluation.rerank_eval import RecordLog, final_rank, rerank_metrics, run_rerank, select_llm_weight
from promptrec.evaluation.splits import protocol_a_split
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.retrieval import ItemVectorStore
from promptrec.retrieval.store import make_client
from promptrec.settings import FusionSettings
from promptrec.testing import tiny_dataset, valid_reply


@pytest.fixture
def split(tiny):
    return protocol_a_split(tiny.interactions.frame, k=2)


@pytest.fixture
def worlds(split, tiny, hash_embedder, tmp_path):
    catalog = split_catalog(split, tiny)
    store = ItemVectorStore(make_client(tmp_path / "c"), hash_embedder, "items")
    index_split_items(store, catalog)
    fusion = FusionSettings(weights={"embedding": 0.3, "ease": 1.0}, params={"ease": {"lambda_": 10.0}},
                            candidate_depth=30)
    return {s: StageWorld(split, s, catalog, store, hash_embedder, fusion, tmp_path / "collab") for s in ("valid", "test")}


def test_stage_logs_hold_no_target(split):
    valid, test = stage_log(split, "valid"), stage_log(split, "test")
    assert len(test) == len(valid) + split.n_users
    for u, user in enumerate(split.users):
        assert split.items[split.valid_target[u]] not in valid.history(user)
        assert split.items[split.test_target[u]] not in test.history(user)
        assert test.history(user)[-1] == split.items[split.valid_target[u]]


def test_pool_ranks_match_the_product_retriever(worlds, split):
    world = worlds["test"]
    users = list(range(split.n_users))
    lists, seconds = retrieval_lists(world, users, depth=30)
    direct = np.array([rank_of(world.target(u), lst) for u, lst in zip(users, lists)])
    pooled = pool_ranks(collect_pools(world, users), [world.target(u) for u in users], world.fusion.weights)
    assert np.array_equal(direct, pooled) and len(seconds) == len(users)
    metrics = list_metrics(world, users, lists)
    assert metrics["n_users"] == split.n_users and 0 <= metrics["N@10"] <= 1


@pytest.fixture
def valid_pools(worlds, split):
    """Every user's validation pool (every source, depth 30) and target."""
    world = worlds["valid"]
    users = list(range(split.n_users))
    return collect_pools(world, users), [world.target(u) for u in users]


def test_weights_are_selected_by_validation_n_at_10(valid_pools):
    pools, targets = valid_pools
    grid = [{"embedding": 1.0, "ease": 0.0}, {"embedding": 0.0, "ease": 1.0}]
    chosen, rows = select_weights(pools, targets, grid)
    assert chosen == max(zip(grid, rows), key=lambda pair: pair[1]["N@10"])[0]
    assert len(rows) == 2 and all("R@10" in r for r in rows)


def test_rerank_records_resume_and_blend(worlds, split, tiny, tmp_path):
    world = worlds["test"]
    users = [0, 1, 2]
    log = RecordLog(tmp_path / "r.jsonl")
    client = LLMClient(ScriptedLLM(default=valid_reply))
    records = run_rerank(world, users, client, tiny, log, depth=6, k=3, profile_budget=100)
    assert len(records) == 3 and all(r.valid and r.calls == 2 for r in records)
    for r in records:
        assert final_rank(r, 0.0) == r.fused_rank  # weight 0 keeps the fused order
        assert r.llm_order == r.fused[::-1][:3]     # the scripted model reverses
    silent = LLMClient(ScriptedLLM())               # any call would fail
    again = run_rerank(world, users, silent, tiny, log, depth=6, k=3, profile_budget=100)
    assert [r.model_dump() for r in again] == [r.model_dump() for r in records] and silent.stats.calls == 0
    metrics = rerank_metrics(records, 0.0)
    assert metrics["grounding_rate"] > 0 and metrics["fallback_rate"] == 0 and metrics["llm_calls"] == 6
    weight, rows = select_llm_weight(records)
    assert rows[0]["llm_weight"] == 0.0 and weight in [r["llm_weight"] for r in rows]


def test_a_harmful_model_gets_weight_zero(worlds, tiny, tmp_path):
    world = worlds["valid"]
    records = run_rerank(world, list(range(12)), LLMClient(ScriptedLLM(default=valid_reply)), tiny,
                         RecordLog(tmp_path / "r.jsonl"), depth=8, k=8, profile_budget=0)
    fused = rerank_metrics(records, 0.0)["N@10"]
    weight, _ = select_llm_weight(records)
    assert rerank_metrics(records, weight)["N@10"] >= fused  # never below the retrieval it reranks


def test_position_bias_is_measured_and_mitigated(tmp_path):
    def first_shown(request):  # a maximally position-biased model
        enum = request.json_schema["properties"]["picks"]["items"]["properties"]["id"]["enum"]
        history = request.json_schema["properties"]["picks"]["items"]["properties"]["because"]["items"]["enum"]
        k = request.json_schema["properties"]["picks"]["minItems"]
        return {"picks": [{"id": c, "reason": "First one shown.", "because": history[:1]} for c in enum[:k]]}

    tiny = tiny_dataset(items_per_genre=10)
    split = protocol_a_split(tiny.interactions.frame, k=1)
    client = LLMClient(ScriptedLLM(default=first_shown))
    records = run_position_bias(split, split_catalog(split, tiny), client, [0, 1], tmp_path / "b.jsonl",
                                positions=(0, 19), k=10)
    summary = summarize(records)
    plain, mitigated = summary["permutations=1"], summary["permutations=2"]
    assert plain["N@10_by_target_position"][0] == 1.0 and plain["N@10_by_target_position"][19] == 0.0
    assert mitigated["N@10_spread"] < plain["N@10_spread"]


def test_report_files(tmp_path):
    rows = [{"name": "A", "split": "test", "metrics": {"n_users": 3, "N@10": 0.1, "R@10": 0.2}},
            {"name": "Fused + LLM rerank", "split": "test",
             "metrics": {"n_users": 3, "N@10": 0.05, "R@10": 0.1, "grounding_rate": 1.0}}]
    meta = {"split": {"items": 10}, "seed": 0}
    paths = write_report(tmp_path, "r", {"rows": rows, "selection": {"x": 1}, "meta": meta})
    text = paths["md"].read_text()
    assert "| A | test | 3 |" in text and "grounding_rate" in text and "Choices made on validation" in text
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_record_log_keeps_absent_targets_and_survives_a_cut_line(tmp_path):
    from promptrec.evaluation.rerank_eval import RerankRecord

    path = tmp_path / "r.jsonl"
    log = RecordLog(path)
    missed = RerankRecord(user="7", stage="test", target="x", fused=["a", "b"], fused_rank=float("inf"),
                          valid=True, seconds=1.0)
    log.append(missed)
    assert log.load()["7"].fused_rank == float("inf")  # a target outside the list is not a redo next time
    with path.open("a") as handle:
        handle.write('{"user": "8", "stage": "te')  # interrupted mid-line
    assert set(log.load()) == {"7"}
    log.append(missed.model_copy(update={"user": "8"}))
    assert set(log.load()) == {"7", "8"} and len(path.read_text().splitlines()) == 2
    legacy = missed.model_dump_json().replace('"fused_rank":Infinity', '"fused_rank":null')
    path.write_text(legacy + "\nnot json\n" + missed.model_dump_json() + "\n")
    with pytest.raises(ValueError, match=r"r\.jsonl:2: unreadable record"):
        log.load()
    path.write_text(legacy + "\n")
    assert log.load()["7"].fused_rank == float("inf")


@pytest.mark.parametrize("depth", [5, 12])
def test_a_restricted_deep_pool_is_the_pool_the_product_builds_at_that_depth(worlds, split, depth):
    from promptrec.evaluation.product import restrict_pool

    world = worlds["test"]
    users = list(range(split.n_users))
    deep = collect_pools(world, users)  # every source, depth 30
    shallow = world.with_weights(world.fusion.weights, pool_depth=depth)
    for u, (items, sources) in zip(users, deep):
        history, times = world.history(u)
        product_items, _ = shallow.retriever.pool(history, times)
        restricted, _ = restrict_pool(items, sources, world.fusion.weights, depth)
        assert set(restricted) == set(product_items)
    targets = [world.target(u) for u in users]
    restricted_pools = [restrict_pool(i, s, world.fusion.weights, depth) for i, s in deep]
    lists, _ = retrieval_lists(shallow, users, depth=60)
    direct = np.array([rank_of(t, lst) for t, lst in zip(targets, lists)])
    assert np.array_equal(pool_ranks(restricted_pools, targets, world.fusion.weights), direct)


def test_pool_depth_and_weights_are_selected_together(valid_pools):
    from promptrec.evaluation.product import select_fusion

    pools, targets = valid_pools
    grid = [{"embedding": 1.0, "ease": 0.0}, {"embedding": 0.1, "ease": 1.0}]
    weights, depth, rows = select_fusion(pools, targets, grid, depths=(3, 30))
    assert len(rows) == 4 and {r["pool_depth"] for r in rows} == {3, 30}
    chosen = next(r for r in rows if (r["weights"], r["pool_depth"]) == (weights, depth))
    assert chosen["N@10"] == max(r["N@10"] for r in rows)
    embedding_only = {r["pool_depth"]: r["R@10"] for r in rows if r["weights"]["ease"] == 0.0}
    assert embedding_only[3] <= embedding_only[30]  # a 3-item pool holds a subset of the top 10


def test_a_record_is_redone_when_the_model_would_see_another_list(worlds, tiny, tmp_path):
    log = RecordLog(tmp_path / "r.jsonl")
    users = list(range(6))
    first = run_rerank(worlds["test"], users, LLMClient(ScriptedLLM(default=valid_reply)), tiny, log,
                       depth=6, k=3, profile_budget=0)
    other = worlds["test"].with_weights({"embedding": 1.0})
    client = LLMClient(ScriptedLLM(default=valid_reply))
    second = run_rerank(other, users, client, tiny, log, depth=6, k=3, profile_budget=0)
    changed = sum(a.fused != b.fused or a.fused_rank != b.fused_rank for a, b in zip(first, second))
    assert changed > 0 and client.stats.calls == changed
    assert [r.fused for r in second] == [[c.item_id for c in other.retriever.retrieve(*other.history(u), depth=6)]
                                         for u in users]
