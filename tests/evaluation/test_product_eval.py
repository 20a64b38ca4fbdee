"""The product stages under Protocol A, on the tiny synthetic dataset with fakes."""

from dataclasses import replace

import numpy as np
import pytest

from promptrec.evaluation.position_bias import bias_log, run_position_bias, summarize
from promptrec.evaluation.product import (collect_pools, list_metrics, pool_ranks, rank_of, retrieval_lists,
                                          select_weights, split_catalog, stage_log, stage_world)
from promptrec.evaluation.report import write_report
from promptrec.evaluation.rerank_eval import final_rank, rerank_log, rerank_metrics, run_rerank, select_llm_weight
from promptrec.evaluation.splits import protocol_a_split
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.settings import ProfileSettings, Settings
from promptrec.testing import tiny_dataset, valid_reply


@pytest.fixture
def bench(make_bench):
    return make_bench()


@pytest.fixture
def worlds(split, bench, tmp_path):
    return {s: stage_world(split, s, bench, tmp_path / "collab") for s in ("valid", "test")}


def llm_world(split, bench, stage, client, tmp_path, depth, profile_budget=0):
    """A stage world whose engine has ``client``, the rerank at ``depth`` and a profile of ``profile_budget`` tokens."""
    settings = bench.settings.model_copy(update={
        "rerank": bench.settings.rerank.model_copy(update={"depth": depth}),
        "profile": ProfileSettings(enabled=profile_budget > 0, token_budget=profile_budget or 1)})
    return stage_world(split, stage, replace(bench, settings=settings, client=client), tmp_path / "collab")


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


def test_rerank_records_resume_and_blend(split, bench, tmp_path):
    users = [0, 1, 2]
    log = rerank_log(tmp_path / "r.jsonl")
    client = LLMClient(ScriptedLLM(default=valid_reply))
    world = llm_world(split, bench, "test", client, tmp_path, depth=6, profile_budget=100)
    records = run_rerank(world, users, log, k=3)
    assert len(records) == 3 and all(r.valid and r.calls == 2 for r in records)
    for r in records:
        assert final_rank(r, 0.0) == r.fused_rank  # weight 0 keeps the fused order
        assert r.llm_order == r.fused[::-1][:3]     # the scripted model reverses
    silent = LLMClient(ScriptedLLM())               # any call would fail
    again = run_rerank(llm_world(split, bench, "test", silent, tmp_path, depth=6, profile_budget=100), users, log, k=3)
    assert [r.model_dump() for r in again] == [r.model_dump() for r in records] and silent.stats.calls == 0
    metrics = rerank_metrics(records, 0.0)
    assert metrics["grounding_rate"] > 0 and metrics["fallback_rate"] == 0 and metrics["llm_calls"] == 6
    weight, rows = select_llm_weight(records)
    assert rows[0]["llm_weight"] == 0.0 and weight in [r["llm_weight"] for r in rows]


def test_a_harmful_model_gets_weight_zero(split, bench, tiny, tmp_path):
    users = list(range(12))
    targets = {tiny.catalog[split.items[split.valid_target[u]]].title for u in users}

    def demote_the_target(request):  # a model that always puts the user's next item last
        schema = (request.json_schema or {}).get("properties", {})["picks"]
        keys, history = schema["items"]["properties"]["id"]["enum"], schema["items"]["properties"]["because"]["items"]["enum"]
        prompt = "\n".join(m["content"] for m in request.messages)
        line = {key: next(row for row in prompt.splitlines() if row.startswith(f"{key}: ")) for key in keys}
        bad = [key for key in keys if any(title in line[key] for title in targets)]
        order = [key for key in keys if key not in bad] + bad
        return {"picks": [{"id": key, "reason": "Chosen for you.", "because": history[-1:]}
                          for key in order[:schema["minItems"]]]}

    world = llm_world(split, bench, "valid", LLMClient(ScriptedLLM(default=demote_the_target)), tmp_path, depth=8)
    records = run_rerank(world, users, rerank_log(tmp_path / "r.jsonl"), k=8)
    assert all(r.valid for r in records)
    fused = rerank_metrics(records, 0.0)["N@10"]
    assert rerank_metrics(records, 1.0)["N@10"] < fused  # the model really hurts
    weight, _ = select_llm_weight(records)
    assert weight == 0.0


def test_position_bias_is_measured_and_mitigated(tmp_path):
    def first_shown(request):  # a maximally position-biased model
        enum = (request.json_schema or {}).get("properties", {})["picks"]["items"]["properties"]["id"]["enum"]
        history = (request.json_schema or {}).get("properties", {})["picks"]["items"]["properties"]["because"]["items"]["enum"]
        k = (request.json_schema or {}).get("properties", {})["picks"]["minItems"]
        return {"picks": [{"id": c, "reason": "First one shown.", "because": history[:1]} for c in enum[:k]]}

    tiny = tiny_dataset(items_per_genre=10)
    split = protocol_a_split(tiny.interactions.frame, k=1)
    client = LLMClient(ScriptedLLM(default=first_shown))
    settings = Settings(state_dir=tmp_path / "state")
    records = run_position_bias(split, settings, split_catalog(split, tiny), client, None, [0, 1],
                                bias_log(tmp_path / "b.jsonl"), positions=(0, 19), k=10)
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


def test_rerank_records_keep_a_target_outside_the_list(tmp_path):
    from promptrec.evaluation.rerank_eval import RerankRecord

    log = rerank_log(tmp_path / "r.jsonl")
    missed = RerankRecord(user="7", stage="test", target="x", fused=["a", "b"], fused_rank=float("inf"),
                          valid=True, seconds=1.0)
    log.append(missed)
    assert log.load()["7"].fused_rank == float("inf")  # a target outside the list is not a redo next time


@pytest.mark.parametrize("depth", [5, 12])
def test_a_restricted_deep_pool_is_the_pool_the_product_builds_at_that_depth(worlds, split, depth):
    from promptrec.evaluation.product import restrict_pool

    world = worlds["test"]
    users = list(range(split.n_users))
    deep = collect_pools(world, users)  # every source, depth 30
    shallow = world.with_weights(world.fusion.weights, pool_depth=depth)
    for u, (items, sources) in zip(users, deep):
        product_items, _ = shallow.retriever.pool(world.history(u))
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


def test_a_record_is_redone_when_the_model_would_see_another_list(split, bench, tmp_path):
    log = rerank_log(tmp_path / "r.jsonl")
    users = list(range(6))
    world = llm_world(split, bench, "test", LLMClient(ScriptedLLM(default=valid_reply)), tmp_path, depth=6)
    first = run_rerank(world, users, log, k=3)
    client = LLMClient(ScriptedLLM(default=valid_reply))
    other = llm_world(split, bench, "test", client, tmp_path, depth=6).with_weights({"embedding": 1.0})
    second = run_rerank(other, users, log, k=3)
    changed = sum(a.fused != b.fused or a.fused_rank != b.fused_rank for a, b in zip(first, second))
    assert changed > 0 and client.stats.calls == changed
    assert [r.fused for r in second] == [[c.item_id for c in other.retriever.retrieve(other.history(u), depth=6)]
                                         for u in users]


def test_report_cells_carry_intervals_and_sampled_rows_are_drawn_apart(tmp_path):
    from promptrec.evaluation.report import _sampled, cell, markdown_table, reason_lines

    ci = {"N@10": [0.081, 0.105], "pop_rank": [430.2, 490.7]}
    full = {"name": "Fused retrieval", "split": "test", "metrics": {"n_users": 610, "N@10": 0.093, "pop_rank": 459.0},
            "intervals": ci,
            "groups": {"target_tier": {"tail": {"users": 10, "N@10": 0.01, "R@10": 0.1,
                                                "intervals": {"N@10": [0.0, 0.03], "R@10": [0.0, 0.3]}}}}}
    sample = {"name": "Fused + LLM rerank (w=0.4)", "split": "test",
              "metrics": {"n_users": 20, "N@10": 0.129, "grounding_rate": 1.0, "faithfulness": 0.5},
              "intervals": {"N@10": [0.05, 0.21]},
              "reason_sample": [{"title": "Heat `x`", "cited": ["Ronin\x1b[31m"], "reason": "A crime film\nlike Ronin.",
                                 "claims": [{"term": "crime", "confirmed": True}], "faithful": True, "leak": None}]}
    assert cell(0.093, [0.081, 0.105]) == "0.0930 [0.081, 0.105]" and cell(459.0, [430.2, 490.7]) == "459 [430, 491]"
    assert cell(float("nan"), [0, 1]) == "–" and cell(0.5) == "0.5000"
    assert "| Fused retrieval | test | 610 | 0.0930 [0.081, 0.105] | 459 [430, 491] |" in markdown_table([full], ("N@10", "pop_rank"))
    assert _sampled([full, sample]) == ([full], [sample])
    block = "\n".join(reason_lines(sample["reason_sample"]))
    assert "\x1b" not in block and "`x`" not in block and "A crime film like Ronin." in block
    meta = {"split": {"items": 10}, "seed": 0, "groups": {"test": {"tiers": {"tail": {"items": 3, "interaction_share": 0.2}},
                                                                   "activity": {"light": "history <= 5"}}}}
    paths = write_report(tmp_path, "r", {"rows": [full, sample], "selection": {}, "meta": meta})
    text = paths["md"].read_text()
    assert "0.0930 [0.081, 0.105]" in text and "## Beyond accuracy" in text and "0.0100 [0.000, 0.030] (10)" in text
    assert "faithfulness" in text and "A seeded sample of the model's reasons" in text
    assert "No users file in this dataset" in text
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_users_file_values_are_inert_in_the_report():
    from promptrec.evaluation.report import group_table

    row = {"name": "A", "split": "test", "metrics": {"n_users": 2},
           "groups": {"attribute:job": {"<b>x</b>|y": {"users": 2, "N@10": 0.5, "R@10": 1.0, "intervals": {}}}}}
    table = group_table([row], "attribute:job")
    assert "<b>" not in table and "N@10 b x /b  y" in table and all(line.count("|") == 5 for line in table.splitlines())


@pytest.mark.parametrize("rerank", [True, False])
def test_protocol_a_llm_rows_carry_intervals_groups_and_explanation_metrics(tmp_path, monkeypatch, rerank):
    """The LLM stage of run_protocol_a with a scripted model: every row has intervals and groups, the
    LLM rows the explanation metrics and a reason sample, and the report prints them; the product's
    explained answer is measured with or without the rerank stage."""
    from promptrec.evaluation import runner
    from promptrec.testing import with_users, write_dataset_folder

    import re

    def naming_reply(request):  # the scripted picks, each reason naming the cited history item's title
        reply = valid_reply(request)
        if isinstance(reply, str):  # a plain-text reason of the explainer
            return reply
        picks = reply.get("picks") or []
        if picks and picks[0].get("because"):
            text = "\n".join(m["content"] for m in request.messages)
            found = re.search(rf"^{picks[0]['because'][0]}: (.+?) \(\d{{4}}\)", text, re.M)
            for pick in picks:
                pick["reason"] = f"Like {found.group(1)}, it has the same feel and a similar pace." if found else pick["reason"]
        return reply

    product = runner.Recommender
    monkeypatch.setattr(runner, "Recommender", lambda settings, dataset, llm: product(
        settings, dataset=dataset, llm=ScriptedLLM(default=naming_reply)))
    write_dataset_folder(with_users(tiny_dataset(n_users=60, items_per_genre=8)), tmp_path / "shop")
    settings = Settings(dataset=str(tmp_path / "shop"), state_dir=tmp_path / "state")
    config = runner.EvalConfig(llm=True, llm_users=4, folds=1, classic=False, pool_depths=[30],
                               embedding_weights=[0.0, 0.5], rerank_k=3, rerank=rerank)
    payload = runner.run_protocol_a(config, settings, say=lambda line: None)
    rows = {(r["name"].split(" (w=")[0], r["split"]): r for r in payload["rows"]}
    for row in payload["rows"]:
        assert row["intervals"]["N@10"] is not None and {"target_tier", "activity", "attribute:age"} <= set(row["groups"])
    names = {r["name"].split(" (w=")[0] for r in payload["rows"]}
    reranked = {"Fused + LLM rerank", "LLM order alone"}
    assert (reranked <= names) == rerank and ("llm_weight" in payload["selection"]) == rerank
    for split in ("valid", "test"):
        product = rows[("Fused + model reasons (product)", split)]
        assert product["metrics"]["n_users"] == 4 and product["metrics"]["reasons"] > 0
        for metric in ("faithfulness", "draft_faithfulness", "draft_refused_rate", "drafts_per_list",
                       "explain_latency_p50_s"):
            assert metric in product["metrics"] and metric in product["intervals"], metric
        assert product["metrics"]["drafts_per_list"] == 3.0 and product["reason_sample"]
        for name in reranked & names:
            llm = rows[(name, split)]
            assert llm["metrics"]["n_users"] == 4
            for metric in ("faithfulness", "claim_rate", "leak_rate", "distinct_cited_per_list", "grounding_rate"):
                assert metric in llm["metrics"] and metric in llm["intervals"], metric
        if rerank:
            alone = rows[("LLM order alone", split)]  # the model's picks are shown: its reasons are read
            assert alone["metrics"]["reasons"] > 0 and alone["metrics"]["leak_rate"] == 0.0
            assert 0 < len(alone["reason_sample"]) <= 10 and alone["reason_sample"][0]["reason"].startswith("Like ")
    paths = write_report(tmp_path / "out", "r", payload)
    text = paths["md"].read_text()
    assert ("A seeded sample of the model's reasons" in text) == rerank and "N@10 by age (from the users file)" in text
    assert "## The product's explained answer" in text and "A seeded sample of the shown model reasons" in text
    assert "| Fused + model reasons (product) | test | 4 |" in text


def test_split_store_embeds_catalog_text_only(split, tiny, hash_embedder, tmp_path):
    """The evaluation's store never reads a feature store: a feature job filling one cannot move the figures."""
    from promptrec.evaluation.product import split_catalog, split_store
    from promptrec.knowledge.items import feature_text
    from promptrec.retrieval.store import text_hash

    catalog = split_catalog(split, tiny)
    store = split_store(tmp_path / "chroma", hash_embedder, catalog)
    expected = {it.item_id: text_hash(feature_text(it, None)) for it in catalog}
    assert store.stored_hashes() == expected
    again = split_store(tmp_path / "chroma", hash_embedder, catalog)  # reopened: nothing re-embedded
    assert again.count() == len(expected)
