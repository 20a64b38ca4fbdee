"""The OpenAI-compatible path against a real ``python -m llama_cpp.server`` serving the smallest GGUF."""

from __future__ import annotations


import pytest

from promptrec.knowledge import UserProfiler
from promptrec.llm import LLMClient
from promptrec.llm.langchain_backend import LangChainBackend
from promptrec.llm.openai_backend import OpenAIBackend
from promptrec.testing import llama_server
from promptrec.types import History

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with llama_server(tmp_path_factory.mktemp("models"), log, n_ctx=2048) as url:
        yield url


@pytest.fixture(scope="module")
def data(movielens):
    return movielens


def test_openai_backend_profiles_a_user_against_a_local_server(server, data):
    backend = OpenAIBackend("smol", base_url=server, api_key="sk-must-not-leak")
    assert backend.sent_key != "sk-must-not-leak"
    client = LLMClient(backend)
    history = History(items=data.interactions.history("1")[-8:])
    result = UserProfiler(client, data.catalog, token_budget=200).profile(history)
    # a schema-valid reply came back over HTTP: used, or refused by the profile quality gate with its reason
    assert result.source == "llm" or result.rejected, result.error
    assert client.stats.calls == 1 and client.stats.invalid_outputs == 0 and client.stats.prompt_tokens > 50
    assert backend.count_tokens("hello world") == 2  # the server's own tokenizer


def test_langchain_chat_openai_against_the_same_server(server, data):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=server, api_key="sk-none", model="smol", temperature=0, max_tokens=200)
    backend = LangChainBackend(chat)
    client = LLMClient(backend)
    result = UserProfiler(client, data.catalog, token_budget=200).profile(History(items=data.interactions.history("2")[-5:]))
    assert client.stats.calls == 1
    # without grammar constraints a 135M model may not produce valid JSON: either way the result is usable
    assert result.source in ("llm", "fallback") and result.profile.summary
    assert backend.model_id == "langchain:smol"
