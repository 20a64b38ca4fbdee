"""promptrec through LangChain's own machinery: retriever.invoke, tool.invoke, a runnable chain, an agent loop."""

import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableLambda

from promptrec import Recommender
from promptrec.integrations.langchain import TOOL_NAME, RecommendationRetriever, recommend_tool
from promptrec.llm import LLMCache, LLMClient, ScriptedLLM
from promptrec.retrieval.store import make_client
from promptrec.testing import valid_reply


@pytest.fixture
def rec(settings, tiny, hash_embedder):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1,
                                                "params": {"ease": {"lambda_": 10.0}}})
    rerank = settings.rerank.model_copy(update={"depth": 8, "llm_weight": 1.0})
    settings = settings.model_copy(update={"fusion": fusion, "rerank": rerank})
    client = LLMClient(ScriptedLLM(default=valid_reply), LLMCache(None))
    return Recommender(settings, dataset=tiny, llm=client, embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))


def test_retriever_returns_documents_with_item_text_and_explanations(rec, tiny):
    retriever = RecommendationRetriever(recommender=rec, user_id="1", k=4)
    docs = retriever.invoke("")
    expected = rec.recommend("1", k=4)
    history = set(tiny.interactions.history("1"))
    assert [d.metadata["item_id"] for d in docs] == [r.item_id for r in expected.items]
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3, 4]
    for doc in docs:
        item = tiny.catalog[doc.metadata["item_id"]]
        assert doc.page_content == item.text() and doc.metadata["title"] == item.title
        assert doc.metadata["explanation"] and doc.metadata["explained_by"] == "llm"
        assert doc.metadata["cited_history"] and set(doc.metadata["cited_history"]) <= history
        assert doc.metadata["cited_titles"] == [tiny.catalog[i].title for i in doc.metadata["cited_history"]]
        assert doc.metadata["item_id"] not in history


def test_the_query_is_the_request_and_an_ad_hoc_history_works(rec, tiny):
    retriever = RecommendationRetriever(recommender=rec, history=["Crime Thriller 1 (1990)", "121"], k=3,
                                        exclude=["122"])
    docs = retriever.invoke("more crime thriller please")
    assert len(docs) == 3 and all(d.metadata["user_id"] is None for d in docs)
    assert "122" not in {d.metadata["item_id"] for d in docs}
    direct = rec.recommend_for_history(["Crime Thriller 1 (1990)", "121"], k=3, request="more crime thriller please",
                                       exclude=["122"])
    assert [d.metadata["item_id"] for d in docs] == [r.item_id for r in direct.items]
    # the request reaches the pipeline: it is read (by the rules, whole: the model is not needed) and steers the list
    assert direct.request == "more crime thriller please"
    assert {g.lower() for g in direct.intent["genres"]} == {"crime", "thriller"}


def test_retriever_in_a_runnable_chain(rec):
    retriever = RecommendationRetriever(recommender=rec, user_id="2", k=3)
    chain = retriever | RunnableLambda(lambda docs: "\n".join(f"{d.metadata['rank']}. {d.metadata['title']}"
                                                              for d in docs))
    text = chain.invoke("something new")
    titles = [r.title for r in rec.recommend("2", k=3, request="something new").items]
    assert text.splitlines() == [f"{n}. {t}" for n, t in enumerate(titles, start=1)]
    assert chain.batch(["something new", "something new"]) == [text, text]


def test_tool_invoke_returns_a_compact_json_list(rec, tiny):
    tool = recommend_tool(rec, default_user="3")
    assert tool.name == TOOL_NAME and {"request", "user_id", "liked_titles", "k"} <= set(tool.args)
    picks = json.loads(tool.invoke({"request": "anything", "k": 3}))
    assert [p["id"] for p in picks] == [r.item_id for r in rec.recommend("3", k=3, request="anything").items]
    assert all(set(p) == {"id", "title", "why"} and p["why"] for p in picks)
    liked = json.loads(tool.invoke({"request": "", "liked_titles": ["Romantic Comedy 2 (1991)"], "k": 2}))
    assert len(liked) == 2 and "Romantic Comedy 2 (1991)" not in {p["title"] for p in liked}


def test_tool_reports_unknown_users_and_titles_to_the_agent(rec):
    tool = recommend_tool(rec)
    assert "unknown user '999'" in tool.invoke({"request": "x", "user_id": "999"})
    assert "'Nonexistent Film'" in tool.invoke({"request": "x", "liked_titles": ["Nonexistent Film"]})


class ToolCallingFake(GenericFakeChatModel):
    """LangChain's scripted chat model, accepting tools as a tool-calling model does."""

    bound: list = []

    def bind_tools(self, tools, **kwargs):
        self.bound.extend(getattr(t, "name", None) for t in tools)
        return self


def test_a_langchain_agent_calls_the_tool_and_gets_real_recommendations(rec):
    from langchain.agents import create_agent

    call = {"name": TOOL_NAME, "args": {"request": "a space adventure", "user_id": "1", "k": 3}, "id": "call_1"}
    model = ToolCallingFake(messages=iter([AIMessage(content="", tool_calls=[call]), "Here are three picks."]))
    agent = create_agent(model, [recommend_tool(rec)], system_prompt="You recommend movies.")
    state = agent.invoke({"messages": [HumanMessage("I'm user 1, I want a space adventure")]})
    assert TOOL_NAME in model.bound
    tool_messages = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert len(tool_messages) == 1 and tool_messages[0].tool_call_id == "call_1"
    picks = json.loads(tool_messages[0].content)
    expected = rec.recommend("1", k=3, request="a space adventure")
    assert [p["id"] for p in picks] == [r.item_id for r in expected.items]
    assert state["messages"][-1].content == "Here are three picks."


def test_a_minimal_bind_tools_loop(rec):
    tool = recommend_tool(rec)
    call = {"name": TOOL_NAME, "args": {"request": "", "liked_titles": ["Space Adventure 1 (1990)"], "k": 2},
            "id": "c1"}
    model = ToolCallingFake(messages=iter([AIMessage(content="", tool_calls=[call]), "done"])).bind_tools([tool])
    messages = [HumanMessage("I liked Space Adventure 1")]
    while True:
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            break
        messages.extend(tool.invoke(c) for c in reply.tool_calls)  # a ToolCall in gives a ToolMessage out
    assert isinstance(messages[2], ToolMessage) and messages[-1].content == "done"
    assert len(json.loads(messages[2].content)) == 2


def test_a_signed_in_tool_serves_one_user_only(rec):
    tool = recommend_tool(rec, default_user="4", signed_in_only=True)
    assert set(tool.args) == {"request", "k"}
    picks = json.loads(tool.invoke({"request": "more", "k": 2}))
    assert [p["id"] for p in picks] == [r.item_id for r in rec.recommend("4", k=2, request="more").items]
    with pytest.raises(ValueError, match="needs default_user"):
        recommend_tool(rec, signed_in_only=True)


def test_invalid_tool_arguments_come_back_as_a_message(rec):
    tool = recommend_tool(rec, default_user="1")
    out = tool.invoke({"request": "x", "k": 500})
    assert isinstance(out, str) and "error" in out.lower() and not out.startswith("[")


def test_documents_carry_how_the_request_was_read_when_the_result_has_it(rec, tiny):
    from promptrec.integrations.langchain import to_documents

    from pydantic import BaseModel

    result = rec.recommend("1", k=2, request="x")
    meta = to_documents(result, tiny.catalog)[0].metadata
    for name in ("understood", "intent"):
        value = getattr(result, name, None)
        if value is None:
            assert name not in meta
        else:
            assert meta[name] == (value.model_dump(mode="json") if isinstance(value, BaseModel) else value)
    object.__setattr__(result, "intent", "more_like")  # the field typed requests will add
    assert to_documents(result, tiny.catalog)[0].metadata["intent"] == "more_like"
