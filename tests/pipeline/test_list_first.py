"""List first, then the model's reading: a typed request is shown at once from the rules' reading;
the model's reading follows and replaces the list only when it changes it (scripted model)."""

from __future__ import annotations

import pytest

from promptrec import Recommender
from promptrec.chat import ChatSession
from promptrec.intent import Intent
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.retrieval.store import make_client
from promptrec.testing import valid_reply


@pytest.fixture
def rec_for(settings, tiny, hash_embedder):
    settings = settings.model_copy(update={"fusion": settings.fusion.model_copy(update={
        "weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1})})

    def make(backend):
        return Recommender(settings, dataset=tiny, llm=LLMClient(backend), embedder=hash_embedder,
                           chroma_client=make_client(settings.state_dir / "chroma"))
    return make


def is_intent(request) -> bool:
    return "like_titles" in (request.json_schema or {}).get("properties", {})


def is_reason(request) -> bool:
    return set((request.json_schema or {}).get("properties", {})) == {"reason"}


def test_a_request_the_rules_read_whole_is_not_given_to_the_model(rec_for):
    backend = ScriptedLLM(default=valid_reply)
    result = rec_for(backend).recommend("1", k=3, request="something light from the 1990s")
    assert result.intent["moods"] == ["light"] and result.intent["year_min"] == 1990 and not result.intent["text"]
    assert sum(map(is_intent, backend.requests)) == 0 and "intent_model_s" not in result.timings


def test_the_list_comes_before_the_model_reads_the_request(rec_for):
    backend = ScriptedLLM(default=valid_reply)
    seen = []
    for event in rec_for(backend).recommend_stream("1", k=4, request="something to cheer me up"):
        seen.append((event.kind, sum(map(is_intent, backend.requests)), sum(map(is_reason, backend.requests))))
    assert seen[0] == ("list", 0, 0)  # nothing asked of the model before the list
    assert sum(map(is_intent, backend.requests)) == 1  # the model read the request after it
    # the scripted reading adds nothing to the rules': the list stands, no second list
    assert [kind for kind, _, _ in seen] == ["list", *["reason"] * 4, "final"]
    intent_at = [n for n, r in enumerate(backend.requests) if is_intent(r)][0]
    assert not any(is_reason(r) for r in backend.requests[:intent_at])  # reasons only for the list that stays


def test_a_reading_that_changes_the_list_replaces_it_before_any_reason(rec_for):
    rec = rec_for(ScriptedLLM(default=valid_reply))
    history = rec.history("1")
    first = rec.engine.candidates(history, 4)
    genre = next(g.strip().lower() for c in first for g in rec.dataset.catalog[c.item_id].fields["genres"].split(",")
                 if not all(g.strip().lower() in rec.dataset.catalog[d.item_id].fields["genres"].lower()
                            for d in first))
    asked = []

    def refine() -> Intent:
        asked.append(True)
        return Intent(source="llm", genres=[genre])

    events = list(rec.engine.recommend_stream(history, 4, request="x", intent=Intent(), refine=refine))
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["list", "list"] and kinds[-1] == "final" and asked == [True]
    before, after, final = events[0].result, events[1].result, events[-1].result
    assert not before.revised and after.revised
    assert [r.item_id for r in before.items] != [r.item_id for r in after.items]
    assert all(genre in rec.dataset.catalog[r.item_id].fields["genres"].lower() for r in after.items)
    reasons = [e.item.item_id for e in events if e.kind == "reason"]
    assert reasons == [r.item_id for r in after.items] == [r.item_id for r in final.items]
    assert final.intent["genres"] == [genre] and final.revised
    assert final.timings["revised_list_s"] >= final.timings["list_s"] and "intent_model_s" in final.timings


def test_chat_keeps_the_reading_the_list_was_made_from(rec_for):
    backend = ScriptedLLM(default=valid_reply)
    session = ChatSession(rec_for(backend), k=3)
    session.handle("/user 1")
    lists = []
    reply = session.handle("something from the 1990s to cheer me up", on_event=lambda kind, data: lists.append(kind))
    assert lists[0] == "list" and reply.recommendations is not None
    assert session.intent is not None and session.intent.year_min == 1990 and session.intent.year_max == 1999
    assert sum(map(is_intent, backend.requests)) == 1  # words left unread by the rules: the model read it
    session.handle("no, older", on_event=lambda kind, data: lists.append(kind))  # read whole by the rules
    assert sum(map(is_intent, backend.requests)) == 1 and session.intent.year_max < 1999
