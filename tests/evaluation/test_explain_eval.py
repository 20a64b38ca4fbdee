"""The product's explained answer under Protocol A: the shown list and the model's reasons as
``recommend()`` makes them, with the scripted model, on the tiny synthetic dataset."""

import re
from dataclasses import replace

import numpy as np
import pytest

from promptrec.evaluation.beyond import split_context
from promptrec.evaluation.explain_eval import explain_log, explained_row, run_explained
from promptrec.evaluation.faithfulness import ClaimReader
from promptrec.evaluation.product import stage_world
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.settings import ProfileSettings
from promptrec.testing import is_reason_request, valid_reply

USERS = [0, 1, 2, 3, 4, 5]


@pytest.fixture
def bench(make_bench):
    return make_bench(profile=ProfileSettings(enabled=True, token_budget=100))


def world_with(split, bench, backend, tmp_path, stage="test"):
    """The stage's product engine with ``backend`` as its model (profiles on: the stream would ask for one)."""
    return stage_world(split, stage, replace(bench, client=LLMClient(backend)), tmp_path / "collab")


def crime_claims(request):
    """A reason naming the watched title that calls every item a crime thriller: true only where both are."""
    if not is_reason_request(request):
        return valid_reply(request)
    watched = re.search(r"<watched>\n(.+?)(?:\. rated|\n)", request.messages[-1]["content"]).group(1)
    return f"Like {watched}, this crime thriller keeps the tension high."


def is_profile(request) -> bool:
    return "likes" in (request.json_schema or {}).get("properties", {})


def test_the_records_are_the_products_own_answers_and_stop_before_the_profile(split, bench, tmp_path):
    backend = ScriptedLLM(default=valid_reply)
    world = world_with(split, bench, backend, tmp_path)
    records = run_explained(world, USERS, explain_log(tmp_path / "e.jsonl"), k=3)
    assert not any(is_profile(r) for r in backend.requests)  # the profile (before `final`) is never asked for
    assert len(backend.requests) == 3 * len(USERS) and all(r.calls == 3 for r in records)
    assert all(r.completion_tokens > 0 and r.seconds > 0 and r.history_length > 0 for r in records)
    for u, record in zip(USERS, records):
        assert record.user == split.users[u] and record.stage == "test" and record.target == world.target(u)
        answer = world.engine.recommend(world.history(u), k=3)
        assert [(r.item_id, r.explanation, r.cited_history, r.explained_by) for r in record.shown.items] == \
               [(r.item_id, r.explanation, r.cited_history, r.explained_by) for r in answer.items]
        assert record.shown.explanations.llm == 3 and record.shown.explanations.pending == 0
        assert [(d.item, d.text, d.problem) for d in record.drafts] == \
               [(r.item_id, r.explanation, None) for r in answer.items]
    assert world.engine.explainer.on_draft is None  # the hook is put back


def test_a_recorded_user_is_not_redone(split, bench, tmp_path):
    log = explain_log(tmp_path / "e.jsonl")
    first = run_explained(world_with(split, bench, ScriptedLLM(default=valid_reply), tmp_path), USERS[:3], log, k=3)
    silent = ScriptedLLM()  # any call would fail
    world = world_with(split, bench, silent, tmp_path)
    again = run_explained(world, USERS, log, k=3)
    assert [r.model_dump() for r in again[:3]] == [r.model_dump() for r in first]
    assert len(silent.requests) == 3 * 3  # only the three new users were asked (and failed: evidence shown)
    assert all(r.explained_by == "evidence" for record in again[3:] for r in record.shown.items)
    valid = world_with(split, bench, ScriptedLLM(default=valid_reply), tmp_path, stage="valid")
    redone = run_explained(valid, USERS[:1], log, k=3)  # another stage is another answer
    assert redone[0].stage == "valid" and redone[0].calls == 3


def test_drafts_refused_by_the_gate_are_recorded_with_their_problem(split, bench, tmp_path):
    world = world_with(split, bench, ScriptedLLM(default=crime_claims), tmp_path)
    records = run_explained(world, list(range(split.n_users)), explain_log(tmp_path / "e.jsonl"), k=4)
    drafts = [(record, d) for record in records for d in record.drafts]
    refused = [(record, d) for record, d in drafts if d.problem]
    assert refused and len(refused) < len(drafts)
    for record, draft in drafts:
        shown = next(r for r in record.shown.items if r.item_id == draft.item)
        assert (shown.explained_by == "llm") == (draft.problem is None)
        if draft.problem:
            assert shown.explanation_note == f"the model's reason was refused by the quality gate: {draft.problem}"
        else:
            assert shown.explanation == draft.text
    assert records[0].shown.explanations.rejected == sum(d.problem is not None for d in records[0].drafts)


def test_the_row_has_ranking_explanation_and_gate_figures_with_intervals(split, bench, tmp_path):
    world = world_with(split, bench, ScriptedLLM(default=crime_claims), tmp_path)
    users = list(range(split.n_users))
    records = run_explained(world, users, explain_log(tmp_path / "e.jsonl"), k=4)
    catalog = bench.catalog
    reader = ClaimReader(catalog)
    row = explained_row(records, users, split.item_index, split_context(split, "test", 0), catalog, reader, k=4)
    metrics, intervals = row["metrics"], row["intervals"]
    assert metrics["n_users"] == len(users) and {"target_tier", "activity"} <= set(row["groups"])
    for name in ("N@10", "R@10", "faithfulness", "claim_rate", "distinct_cited_per_list", "grounding_rate",
                 "llm_explained_rate", "drafts_per_list", "draft_refused_rate", "draft_faithfulness",
                 "explain_latency_mean_s", "explain_latency_p50_s", "explain_latency_p95_s"):
        assert name in metrics and intervals[name] is not None, name
    drafts = [d for r in records for d in r.drafts]
    # fewer than 4 per list: refusals in a row make the explainer stop asking (explain.stop_after_refused)
    assert 0 < metrics["drafts_per_list"] == len(drafts) / len(records) <= 4.0
    assert metrics["shown_faithfulness"] == 1.0  # the gated reasons and the evidence sentences alike
    assert metrics["draft_refused_rate"] == pytest.approx(np.mean([d.problem is not None for d in drafts]))
    assert metrics["faithfulness"] == 1.0 > metrics["draft_faithfulness"]  # the gate reads with the same reader
    ranks = [r.shown_ids.index(r.target) if r.target in r.shown_ids else np.inf for r in records]
    assert metrics["R@10"] == pytest.approx(np.mean(np.isfinite(ranks)))
    assert 0 < len(row["reason_sample"]) <= 10 and all(s["faithful"] for s in row["reason_sample"])
    assert 0 < len(row["refused_sample"]) <= 5 and all(s["problem"] and s["reason"] for s in row["refused_sample"])
    assert row["refused_sample"] == explained_row(records, users, split.item_index, split_context(split, "test", 0),
                                                  catalog, reader, k=4)["refused_sample"]  # seeded
