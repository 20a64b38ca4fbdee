"""The recommend_items tool called by the real SmolLM2 behind ``python -m llama_cpp.server`` on loopback,
through LangChain's ChatOpenAI tool calling, on a slice of ml-latest-small with the real embedder and Chroma."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

from promptrec import Recommender
from promptrec.integrations.langchain import TOOL_NAME, RecommendationRetriever, recommend_tool
from promptrec.settings import Settings
from promptrec.testing import dataset_slice, llama_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with llama_server(tmp_path_factory.mktemp("models"), log, n_ctx=4096, extra=("--chat_format", "chatml-function-calling")) as url:
        yield url


@pytest.fixture(scope="module")
def rec(movielens, tmp_path_factory):
    data = dataset_slice(movielens, n_users=6, max_history=30)
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"),
                        fusion={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1})
    return Recommender(settings, dataset=data, llm=False)


def test_the_real_model_calls_the_tool_through_chat_openai(server, rec):
    from langchain_openai import ChatOpenAI

    user = rec.dataset.interactions.users[0]
    tool = recommend_tool(rec, default_user=user, signed_in_only=True)
    chat = ChatOpenAI(base_url=server, api_key="sk-none", model="smol", temperature=0, max_tokens=120)
    messages = [SystemMessage("You help people pick movies. Use the recommend_items tool."),
                HumanMessage("Recommend me three funny movies for tonight.")]
    reply = chat.bind_tools([tool], tool_choice=TOOL_NAME).invoke(messages)
    assert len(reply.tool_calls) >= 1 and reply.tool_calls[0]["name"] == TOOL_NAME
    assert isinstance(reply.tool_calls[0]["args"]["request"], str)
    result = tool.invoke(reply.tool_calls[0])
    assert isinstance(result, ToolMessage) and result.tool_call_id == reply.tool_calls[0]["id"]
    picks = json.loads(result.content)  # real recommendations from the pipeline, not an error text
    history = set(rec.dataset.interactions.history(user))
    assert picks and all(p["id"] in rec.dataset.catalog and p["id"] not in history for p in picks)
    # llama_cpp.server rejects an assistant message whose content is null (what ChatOpenAI sends with tool
    # calls), and its chatml-function-calling template does not show tool messages to the model: send the
    # tool call with a blank content, and the picks' titles as text
    call = reply.model_copy(update={"content": " "})
    final = chat.invoke([*messages, call, result,
                         HumanMessage("Tell me about these picks: " + ", ".join(p["title"] for p in picks))])
    assert isinstance(final.content, str) and final.content.strip()


def test_retriever_documents_feed_a_real_model_chain(server, rec):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_openai import ChatOpenAI

    user = rec.dataset.interactions.users[1]
    retriever = RecommendationRetriever(recommender=rec, user_id=user, k=3)
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Recommend one of these movies in one sentence:\n{docs}"), ("user", "{request}")])
    chat = ChatOpenAI(base_url=server, api_key="sk-none", model="smol", temperature=0, max_tokens=60)
    seen = {}

    def titles(docs):
        seen["docs"] = docs
        return "\n".join(f"- {d.metadata['title']}: {d.metadata['explanation']}" for d in docs)

    chain = {"docs": retriever | titles, "request": RunnablePassthrough()} | prompt | chat | StrOutputParser()
    answer = chain.invoke("something exciting")
    assert answer.strip() and len(seen["docs"]) == 3
    assert [d.metadata["item_id"] for d in seen["docs"]] == \
        [r.item_id for r in rec.recommend(user, k=3, request="something exciting").items]
