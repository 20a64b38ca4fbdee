"""The OpenAI-compatible path against a real ``python -m llama_cpp.server`` serving the smallest GGUF."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from promptrec.data import load_dataset
from promptrec.knowledge import UserProfiler
from promptrec.llm import LLMClient, resolve_gguf
from promptrec.llm.langchain_backend import LangChainBackend
from promptrec.llm.openai_backend import OpenAIBackend

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = resolve_gguf("small", tmp_path_factory.mktemp("models"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "smol", "--verbose", "false"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited: {log.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 60 s")
    yield f"{url}/v1"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def data(movielens):
    return movielens


def test_openai_backend_profiles_a_user_against_a_local_server(server, data):
    backend = OpenAIBackend("smol", base_url=server, api_key="sk-must-not-leak")
    assert backend.sent_key != "sk-must-not-leak"
    client = LLMClient(backend)
    history = data.interactions.history("1")[-8:]
    result = UserProfiler(client, data.catalog, token_budget=200).profile(history)
    assert result.source == "llm", result.error
    assert client.stats.calls == 1 and client.stats.prompt_tokens > 50
    assert backend.count_tokens("hello world") == 2  # the server's own tokenizer


def test_langchain_chat_openai_against_the_same_server(server, data):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=server, api_key="sk-none", model="smol", temperature=0, max_tokens=200)
    backend = LangChainBackend(chat)
    client = LLMClient(backend)
    result = UserProfiler(client, data.catalog, token_budget=200).profile(data.interactions.history("2")[-5:])
    assert client.stats.calls == 1
    # without grammar constraints a 135M model may not produce valid JSON: either way the result is usable
    assert result.source in ("llm", "fallback") and result.profile.summary
    assert backend.model_id == "langchain:smol"
