from promptrec.knowledge import UserProfiler
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.types import History

PROFILE = {"likes": ["space"], "dislikes": [], "recent_interests": ["adventure"], "summary": "Likes space."}


def test_history_is_cut_to_the_budget_keeping_the_most_recent(tiny):
    history = tiny.interactions.history("1")
    backend = ScriptedLLM(default=PROFILE)
    profiler = UserProfiler(LLMClient(backend), tiny.catalog, token_budget=25)
    lines, used = profiler.fit_budget([f"line {n} " + "w " * 5 for n in range(10)])
    assert used <= 25 and lines[-1].startswith("line 9") and len(lines) < 10
    result = profiler.profile(History(items=history))
    assert result.source == "llm" and result.profile.likes == ["space"]
    assert result.history_tokens <= 25 and 0 < result.history_used < len(history)
    prompt = backend.requests[0].messages[1]["content"]
    assert tiny.catalog[history[-1]].title in prompt and tiny.catalog[history[0]].title not in prompt


def test_ratings_reach_the_prompt(tiny):
    backend = ScriptedLLM(default=PROFILE)
    history = tiny.interactions.history("2")
    UserProfiler(LLMClient(backend), tiny.catalog).profile(History(items=history, ratings={history[-1]: 1.5}))
    assert "| 1.5/5" in backend.requests[0].messages[1]["content"]


def test_invalid_reply_falls_back_to_the_evidence_profile(tiny):
    history = tiny.interactions.history("1")
    result = UserProfiler(LLMClient(ScriptedLLM("garbage")), tiny.catalog).profile(History(items=history))
    assert result.source == "fallback" and result.error.startswith("invalid output")
    assert "space" in result.profile.likes


def test_no_model_uses_the_evidence_profile(tiny):
    result = UserProfiler(None, tiny.catalog).profile(History(items=tiny.interactions.history("3")))
    assert result.source == "fallback" and result.profile.summary.startswith("Mostly enjoys")


def test_the_evidence_profile_never_likes_and_dislikes_the_same_thing():
    from promptrec.data import Catalog, Item
    from promptrec.knowledge.users import evidence_profile

    genres = ["Action", "Adventure", "Comedy", "Drama", "Thriller", "Fantasy", "Horror"]
    catalog = Catalog(Item(item_id=str(n), title=f"M{n}", fields={"genres": ", ".join(genres[n % 7:] + genres[:n % 3])})
                      for n in range(30))
    history = [str(n) for n in range(30)]
    ratings = {str(n): (5.0 if n % 2 else 1.0) for n in range(30)}
    profile = evidence_profile(catalog, history, ratings)
    assert profile.dislikes and not set(profile.likes) & set(profile.dislikes)
