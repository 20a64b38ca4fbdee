import pytest

from promptrec import Recommender, UnknownItems, UnknownUser
from promptrec.llm import LLMCache, LLMClient, ScriptedLLM
from promptrec.retrieval.store import make_client
from promptrec.testing import valid_reply


def build(settings, tiny, hash_embedder, backend, **changes):
    settings = settings.model_copy(update=changes)
    client = LLMClient(backend, LLMCache(settings.llm_cache_path)) if backend else False
    return Recommender(settings, dataset=tiny, llm=client, embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))


@pytest.fixture
def settings(settings):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0, "itemknn": 0.3},
                                                "min_item_support": 1, "params": {"ease": {"lambda_": 10.0}}})
    rerank = settings.rerank.model_copy(update={"depth": 8, "llm_weight": 1.0})
    return settings.model_copy(update={"fusion": fusion, "rerank": rerank})


def reordering(settings, **changes):
    """The settings with the model's rerank deciding the order (``rerank.reorder``)."""
    return settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"reorder": True, **changes})})


def test_recommend_returns_a_validated_explained_list(settings, tiny, hash_embedder):
    backend = ScriptedLLM(default=valid_reply)
    rec = build(settings, tiny, hash_embedder, backend)
    result = rec.recommend("1", k=5)
    fused = build(settings, tiny, hash_embedder, None).recommend("1", k=5)
    history = set(tiny.interactions.history("1"))
    assert len(result.items) == 5 and [r.rank for r in result.items] == [1, 2, 3, 4, 5]
    assert not {r.item_id for r in result.items} & history
    assert result.ordered_by == "fusion" and not result.fallback  # the model explains the fused order
    assert [r.item_id for r in result.items] == [r.item_id for r in fused.items]
    assert all(r.explained_by == "llm" and r.cited_history and set(r.cited_history) <= history for r in result.items)
    assert result.explanations.llm == 5 and result.explanations.pending == 0
    assert result.profile.source == "llm"
    assert set(result.timings) == {"list_s", "profile_s", "retrieve_s", "explain_s", "total_s"}


def test_reordering_by_the_rerank_is_a_setting(settings, tiny, hash_embedder):
    result = build(reordering(settings), tiny, hash_embedder, ScriptedLLM(default=valid_reply)).recommend("1", k=5)
    assert result.ordered_by == "llm_rerank" and not result.fallback
    assert set(result.timings) == {"list_s", "profile_s", "retrieve_s", "rerank_s", "explain_s", "total_s"}


def test_model_order_is_used_at_full_weight(settings, tiny, hash_embedder):
    settings = reordering(settings)
    fused = build(settings, tiny, hash_embedder, None).recommend("1", k=8)
    reranked = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply)).recommend("1", k=8)
    assert [r.item_id for r in reranked.items] == [r.item_id for r in fused.items][::-1]


def test_garbage_from_the_model_falls_back_to_the_fused_order(settings, tiny, hash_embedder):
    settings = reordering(settings)
    fused = build(settings, tiny, hash_embedder, None).recommend("2", k=4)
    rec = build(settings, tiny, hash_embedder, ScriptedLLM(default="I think you would like Star Wars!"))
    result = rec.recommend("2", k=4)
    assert result.fallback and result.ordered_by == "fusion" and "invalid output" in result.fallback_reason
    assert [r.item_id for r in result.items] == [r.item_id for r in fused.items]
    assert all(r.explained_by == "evidence" for r in result.items)
    assert result.profile.source == "fallback"
    assert rec.client.stats.invalid_outputs == 2  # profile and rerank (the reasons are plain text: the gate reads them)
    assert result.explanations.rejected == 4 and all("quality gate" in r.explanation_note for r in result.items)


def test_rerun_is_served_from_the_cache(settings, tiny, hash_embedder):
    first = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply)).recommend("3", k=4)
    backend = ScriptedLLM()  # no replies: any model call would fail
    rec = build(settings, tiny, hash_embedder, backend)
    second = rec.recommend("3", k=4)
    # the profile comes from the profile store (no cache lookup), the reasons from the reply cache
    assert backend.requests == [] and rec.client.stats.calls == 0 and rec.client.stats.cache_hits == 4  # the 4 reasons
    assert second.items == first.items and second.profile == first.profile


def test_a_profile_is_made_once_per_history_and_reused_across_processes(settings, tiny, hash_embedder):
    from promptrec.knowledge.profile_store import ProfileStore

    backend = ScriptedLLM(default=valid_reply)
    first = build(settings, tiny, hash_embedder, backend).recommend("3", k=4)
    profile_calls = [r for r in backend.requests if "likes" in str(r.json_schema)]
    assert first.profile.source == "llm" and len(profile_calls) == 1
    # a new recommender (another process) with an empty reply cache: the stored profile is used
    fresh = ScriptedLLM(default=valid_reply)
    other = settings.model_copy(update={"state_dir": settings.state_dir})
    rec = Recommender(other, dataset=tiny, llm=LLMClient(fresh, None), embedder=hash_embedder,
                      chroma_client=make_client(settings.state_dir / "chroma"))
    again = rec.recommend("3", k=4)
    assert again.profile == first.profile
    assert not any("likes" in str(r.json_schema) for r in fresh.requests)  # only the rerank was asked
    store = ProfileStore(rec.state.profiles)
    assert len(store) == 1 and store.get("3").model_id == "scripted"
    # another model, or another history, is not served that profile
    other_model = ScriptedLLM(default=valid_reply, model_id="other")
    rec2 = Recommender(other, dataset=tiny, llm=LLMClient(other_model, None), embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))
    rec2.recommend("3", k=4)
    assert any("likes" in str(r.json_schema) for r in other_model.requests)
    rec.recommend_for_history(tiny.interactions.history("3"), k=4)  # same items, no user: never stored
    assert len(ProfileStore(rec.state.profiles).records()) == 2


def test_a_failed_profile_call_is_not_stored(settings, tiny, hash_embedder):
    from promptrec.llm.base import LLMError
    from promptrec.knowledge.profile_store import ProfileStore

    rec = build(settings, tiny, hash_embedder, ScriptedLLM(default=LLMError("server down")))
    assert rec.recommend("3", k=4).profile.source == "fallback"
    assert len(ProfileStore(rec.state.profiles)) == 0


def test_an_invalid_profile_reply_is_stored_as_its_fallback_and_not_asked_again(settings, tiny, hash_embedder):
    from promptrec.knowledge.profile_store import ProfileStore

    first = build(settings, tiny, hash_embedder, ScriptedLLM(default="not json")).recommend("3", k=4)
    assert first.profile.source == "fallback" and first.profile.error
    store = ProfileStore(build(settings, tiny, hash_embedder, None).state.profiles)
    assert len(store) == 1 and store.get("3").result.source == "fallback"
    # another process, no reply cache: the stored fallback is served, the profile prompt is not sent again
    fresh = ScriptedLLM(default=valid_reply)
    rec = Recommender(settings, dataset=tiny, llm=LLMClient(fresh, None), embedder=hash_embedder,
                      chroma_client=make_client(settings.state_dir / "chroma"))
    again = rec.recommend("3", k=4)
    assert again.profile == first.profile
    assert not any("likes" in str(r.json_schema) for r in fresh.requests)


def test_unknown_user_is_a_clear_error(settings, tiny, hash_embedder):
    rec = build(settings, tiny, hash_embedder, None)
    with pytest.raises(UnknownUser, match="unknown user '999'"):
        rec.recommend("999")


def test_ad_hoc_history_by_title_or_id(settings, tiny, hash_embedder):
    rec = build(settings, tiny, hash_embedder, None)
    result = rec.recommend_for_history(["Crime Thriller 1 (1990)", "121"], k=3)
    assert result.user_id is None and len(result.items) == 3
    assert all("crime" in tiny.catalog[r.item_id].fields["genres"] for r in result.items)
    with pytest.raises(UnknownItems, match="'Nonexistent Film'"):
        rec.recommend_for_history(["Nonexistent Film"])


def test_request_exclude_and_like_steer_the_list(settings, tiny, hash_embedder):
    rec = build(settings, tiny, hash_embedder, None)
    base = rec.recommend("1", k=3)
    excluded = rec.recommend("1", k=3, exclude=[base.items[0].item_id])
    assert base.items[0].item_id not in {r.item_id for r in excluded.items}
    steered = rec.recommend("1", k=3, like=["110"], request="romantic comedy")
    assert sum("romantic" in tiny.catalog[r.item_id].fields["genres"] for r in steered.items) >= 2


def test_without_a_model_the_list_is_fused_and_explained_from_evidence(settings, tiny, hash_embedder):
    result = build(settings, tiny, hash_embedder, None).recommend("4", k=3)
    assert result.ordered_by == "fusion" and not result.fallback and result.model_id is None
    assert all(r.explained_by == "evidence" and r.cited_history for r in result.items)


def test_index_builds_vectors_then_features_for_popular_items(settings, tiny, hash_embedder):
    rec = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply))
    report = rec.index(features=3)
    assert report["stored"] == len(tiny.catalog) and report["with_features"] == 3
    assert report["features"]["extracted"] == 3
    again = rec.index(features=3)
    assert again["features"]["already_done"] == 3 and again["embedded"] == 0


def test_weight_zero_keeps_fused_order_and_a_request_lets_the_model_reorder(settings, tiny, hash_embedder):
    settings = reordering(settings, llm_weight=0.0, request_llm_weight=1.0)
    fused = build(settings, tiny, hash_embedder, None).recommend("1", k=8)
    rec = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply))
    plain = rec.recommend("1", k=8)
    assert plain.ordered_by == "fusion" and not plain.fallback
    assert [r.item_id for r in plain.items] == [r.item_id for r in fused.items]
    assert all(r.explained_by == "llm" for r in plain.items)
    steered_fused = build(settings, tiny, hash_embedder, None).recommend("1", k=8, request="something lighter")
    steered = rec.recommend("1", k=8, request="something lighter")
    assert steered.ordered_by == "llm_rerank"
    assert [r.item_id for r in steered.items] == [r.item_id for r in steered_fused.items][::-1]


def test_retrieval_works_before_features_and_items_are_re_embedded_when_they_arrive(settings, tiny, hash_embedder):
    rec = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply))
    first = rec.index(features=0)
    assert first["embedded"] == len(tiny.catalog) and first["with_features"] == 0
    before = rec.recommend("1", k=5)
    assert len(before.items) == 5  # raw item text is enough to retrieve
    popular = list(tiny.interactions.frame["item_id"].value_counts().index[:2])
    old = rec.store.vectors(popular)
    second = rec.index(features=2)
    assert second["embedded"] == 2 and second["with_features"] == 2
    new = rec.store.vectors(popular)
    assert all(not (old[i] == new[i]).all() for i in popular)  # the feature text changed their vectors


def test_product_reads_the_features_of_the_model_that_answers(settings, tiny, hash_embedder):
    rec = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply, model_id="model-a"))
    rec.index(features=2)
    assert rec.features.path == rec.state.features_for("model-a", "closed") and len(rec.features) == 2
    other = build(settings, tiny, hash_embedder, ScriptedLLM(default=valid_reply, model_id="model-b"))
    assert other.features.path == rec.state.features_for("model-b", "closed") and len(other.features) == 0


def test_the_feature_style_picks_the_prompt_and_the_store(settings, tiny, hash_embedder):
    backend = ScriptedLLM(default=valid_reply, model_id="model-a")
    rec = build(settings, tiny, hash_embedder, backend)
    rec.index(features=1)
    closed = next(iter(rec.features.records().values())).features
    assert closed.description == "" and rec.features.path.name.endswith(".closed.jsonl")
    vocabulary = backend.requests[0].json_schema["properties"]["mood"]["enum"]
    assert closed.mood in vocabulary and "Mood:" in backend.requests[0].messages[0]["content"]
    opened = settings.model_copy(update={"features": settings.features.model_copy(update={"style": "open"})})
    rec = build(opened, tiny, hash_embedder, ScriptedLLM(default=valid_reply, model_id="model-a"))
    rec.index(features=1)
    assert rec.features.path == rec.state.features_for("model-a", "open")
    assert next(iter(rec.features.records().values())).features.description == "A story."


def test_a_profile_refused_under_older_gate_rules_is_read_again(settings, tiny, hash_embedder):
    from promptrec.knowledge.profile_store import ProfileRecord, ProfileStore, history_key
    from promptrec.types import ProfileResult, UserProfile

    backend = ScriptedLLM(default=valid_reply)
    rec = build(settings, tiny, hash_embedder, backend)
    old = ProfileResult(profile=UserProfile(likes=["x"], dislikes=[], recent_interests=[], summary="x"),
                        source="fallback", history_used=1, rejected="repeats itself (the same phrase twice)")
    store = ProfileStore(rec.state.profiles)
    store.append(ProfileRecord(user_id="3", result=old, history_key=history_key(tiny.interactions.history("3")),
                               model_id="scripted", template_hash=rec.profiler.template.hash))
    again = rec.recommend("3", k=4)
    assert again.profile.source == "llm"  # the reply passes today's rules
    assert any("likes" in str(r.json_schema) for r in backend.requests)
