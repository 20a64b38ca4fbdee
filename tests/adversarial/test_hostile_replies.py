"""The pipeline with a scripted model that misbehaves: what reaches the user stays clean and counted."""

from promptrec import Recommender
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.retrieval.store import make_client
from promptrec.testing import valid_reply


def build(settings, tiny, hash_embedder, backend, reorder=False):
    settings = settings.model_copy(update={
        "fusion": settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1}),
        "rerank": settings.rerank.model_copy(update={"depth": 6, "llm_weight": 1.0, "reorder": reorder}),
    })
    return Recommender(settings, dataset=tiny, llm=LLMClient(backend), embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))


def leaky_reply(request):
    """Valid picks whose reasons leak ids and prompt wording."""
    reply = valid_reply(request)
    leaks = ["C1: the related history item", "H2 H2 H2", "Because it is close to H3.", "- drama,"]
    if isinstance(reply, str):  # one plain-text reason per call: the n-th call leaks the n-th way
        leaky_reply.calls = getattr(leaky_reply, "calls", -1) + 1
        return leaks[leaky_reply.calls % len(leaks)]
    if "picks" in reply:
        leaks = ["C1: the related history item", "H2 H2 H2", "Because it is close to H3.", "- drama,"]
        for n, pick in enumerate(reply["picks"]):
            pick["reason"] = leaks[n % len(leaks)]
    return reply


def test_leaky_reasons_are_replaced_by_evidence_and_counted(settings, tiny, hash_embedder):
    result = build(settings, tiny, hash_embedder, ScriptedLLM(default=leaky_reply)).recommend("1", k=4)
    assert result.ordered_by == "fusion" and not result.fallback
    assert result.rejected_reasons == 4 and result.explanations.rejected == 4
    assert all(r.explained_by == "evidence" and "quality gate" in r.explanation_note for r in result.items)
    for r in result.items:
        assert "C1" not in r.explanation and "H2" not in r.explanation and "history item" not in r.explanation


def test_clean_reasons_are_shown_and_nothing_is_counted(settings, tiny, hash_embedder):
    result = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply)).recommend("1", k=4)
    assert result.rejected_reasons == 0 and all(r.explained_by == "llm" for r in result.items)


def test_no_history_and_a_request_gives_a_reranked_list(settings, tiny, hash_embedder):
    backend = ScriptedLLM(default=valid_reply)
    result = build(settings, tiny, hash_embedder, backend, reorder=True).recommend_for_history(
        [], k=3, request="space adventure")
    assert result.ordered_by == "llm_rerank" and not result.fallback and len(result.items) == 3
    assert result.profile is None and all(r.cited_history == [] for r in result.items)
    reads, reranks = [[r for r in backend.requests if key in (r.json_schema or {}).get("properties", {})] for key in ("like_titles", "picks")]
    assert len(reads) == 1 and len(reranks) == 1 and len(backend.requests) == 2  # the request is read, then the rerank
    assert "because" not in str(reranks[0].json_schema)


def test_a_backend_crash_of_any_kind_is_a_fallback(settings, tiny, hash_embedder):
    from promptrec.llm import LLMError

    backend = ScriptedLLM(default=LLMError("llama.cpp failed on the request (RuntimeError: grammar)"))
    rec = build(settings, tiny, hash_embedder, backend, reorder=True)
    result = rec.recommend("2", k=3)
    assert result.fallback and "grammar" in result.fallback_reason and len(result.items) == 3
    assert rec.client.stats.errors == 2 + 3  # profile, rerank and the 3 reasons, all counted
    assert result.explanations.failed == 3 and all(r.explained_by == "evidence" for r in result.items)
