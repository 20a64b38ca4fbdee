"""One deadline per request: every model call gets the time left, and nothing waits past it."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pydantic import BaseModel

from promptrec.llm import ChatRequest, LLMCache, LLMClient, LLMError, ScriptedLLM
from promptrec.llm.deadline import DeadlineExceeded, current_deadline, deadline
from promptrec.llm.openai_backend import OpenAIBackend
from promptrec.prompts import parse_template

TEMPLATE = parse_template("t", "### system\nBe brief.\n### user\nName: $name")


class Reply(BaseModel):
    answer: str


@pytest.fixture
def hung_server():
    """A real server on loopback that accepts connections and never answers (closed after the test)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    server.close()
    for conn in held:
        conn.close()


def test_each_call_gets_the_time_left_and_the_cache_key_ignores_it(tmp_path):
    backend = ScriptedLLM({"answer": "a"})
    client = LLMClient(backend, LLMCache(tmp_path / "c.sqlite"))
    with client.deadline(30):
        assert client.generate(TEMPLATE, Reply, {"name": "x"}).ok
    timeout = backend.requests[0].timeout_s
    assert timeout is not None and 29 < timeout <= 30
    with client.deadline(5):  # another deadline: the same request is served from the cache
        again = client.generate(TEMPLATE, Reply, {"name": "x"})
    assert again.cached and len(backend.requests) == 1
    assert "timeout_s" not in backend.requests[0].model_dump()


def test_no_call_is_made_after_the_deadline():
    backend = ScriptedLLM({"answer": "a"})
    client = LLMClient(backend)
    with client.deadline(0.01):
        time.sleep(0.02)
        result = client.generate(TEMPLATE, Reply, {"name": "x"})
    assert result.value is None and "0.01 s deadline" in result.error
    assert backend.requests == [] and client.stats.errors == 1 and client.stats.deadline_misses == 1


def test_a_nested_deadline_keeps_the_earlier_one():
    with deadline(1) as outer:
        with deadline(100) as inner:
            assert inner is outer and current_deadline() is outer
        with deadline(0.5) as shorter:
            assert shorter.at < outer.at
    assert current_deadline() is None


def test_openai_backend_gives_up_on_a_hung_server_at_the_deadline(hung_server):
    client = LLMClient(OpenAIBackend("local", base_url=hung_server, timeout_s=120))
    start = time.monotonic()
    with client.deadline(1.5):
        first = client.generate(TEMPLATE, Reply, {"name": "x"})
        second = client.generate(TEMPLATE, Reply, {"name": "y"})
    elapsed = time.monotonic() - start
    assert 1.4 < elapsed < 3.0, elapsed
    assert "deadline" in first.error and "deadline" in second.error
    assert client.stats.deadline_misses == 2


def test_openai_backend_retries_a_refused_connection_only_while_time_allows():
    backend = OpenAIBackend("local", base_url="http://127.0.0.1:9/v1", timeout_s=2, max_retries=5)
    request = ChatRequest(messages=[{"role": "user", "content": "hi"}], timeout_s=0.8)
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="Connection error"):
        backend.chat(request)
    assert time.monotonic() - start < 1.5


def test_openai_backend_without_a_deadline_stops_after_its_retries():
    backend = OpenAIBackend("local", base_url="http://127.0.0.1:9/v1", timeout_s=2, max_retries=1)
    backend.RETRY_PAUSE_S = 0.01
    with pytest.raises(LLMError, match="after 2 attempts"):
        backend.chat(ChatRequest(messages=[{"role": "user", "content": "hi"}]))


def test_recommend_against_a_hung_server_falls_back_at_the_deadline(settings, tiny, hash_embedder, hung_server):
    from promptrec import Recommender
    from promptrec.retrieval.store import make_client

    settings = settings.model_copy(update={
        "deadline_s": 3.0,
        "llm": settings.llm.model_copy(update={"backend": "openai", "model": "local", "base_url": hung_server}),
        "fusion": settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0},
                                                     "min_item_support": 1}),
    })
    rec = Recommender(settings, dataset=tiny, embedder=hash_embedder,
                      chroma_client=make_client(settings.state_dir / "chroma"))
    rec.retriever, rec.client  # noqa: B018 - index and connect first, as a running service would have
    start = time.monotonic()
    result = rec.recommend("1", k=4)
    elapsed = time.monotonic() - start
    assert elapsed < 3.0 + 1.5, elapsed
    assert result.ordered_by == "fusion" and len(result.items) == 4  # the fused order needs no model
    assert all(r.explained_by == "evidence" and "deadline" in r.explanation_note for r in result.items)
    assert result.explanations.late == 4
    assert result.profile.source == "fallback" and "deadline" in result.profile.error
    assert rec.client.stats.deadline_misses >= 2 and rec.client.stats.calls == 0

    start = time.monotonic()  # the next request gets its own deadline, and asks again
    again = rec.recommend("1", k=4)
    assert time.monotonic() - start < 3.0 + 1.5 and again.explanations.late == 4
