"""The in-process llama.cpp backend with the real smallest GGUF: deadlines stop generation, a lock
wait is not model time, and llama.cpp failures are errors, not crashes."""

from __future__ import annotations

import threading
import time

import pytest

from promptrec.llm import ChatRequest, LLMError, resolve_gguf
from promptrec.llm.deadline import DeadlineExceeded
from promptrec.llm.llamacpp import LlamaCppBackend

pytestmark = pytest.mark.integration

SCHEMA = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 200},
                                           "b": {"type": "string", "maxLength": 200}}, "required": ["a", "b"]}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return LlamaCppBackend(resolve_gguf("small", tmp_path_factory.mktemp("models")), n_ctx=2048)


def request(**changes) -> ChatRequest:
    messages = [{"role": "system", "content": "Reply with JSON."},
                {"role": "user", "content": "Describe Toy Story (1995) at length in fields a and b."}]
    return ChatRequest(messages=messages, json_schema=SCHEMA, max_tokens=160).model_copy(update=changes)


def test_a_request_with_time_left_gives_the_same_reply_and_usage_as_one_without(backend):
    backend.chat(request())  # the first reply after loading can differ (llama.cpp's state), so warm up
    plain = backend.chat(request())
    timed = backend.chat(request(timeout_s=60))
    assert timed.text == plain.text and timed.text.startswith("{")
    assert (timed.prompt_tokens, timed.completion_tokens) == (plain.prompt_tokens, plain.completion_tokens)


def test_generation_stops_when_the_deadline_passes(backend):
    full = backend.chat(request())
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="stopped after"):
        backend.chat(request(timeout_s=full.seconds / 4))
    assert time.monotonic() - start < full.seconds * 0.75 + 0.2
    assert backend.chat(request()).text == full.text  # the model is usable afterwards


def test_waiting_for_the_lock_is_not_model_time(backend):
    backend.chat(request())  # warm
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(backend.chat(request()))) for _ in range(2)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    # the two calls ran one after the other, so their model times add up to about the wall time;
    # had the second one counted its wait for the lock, its own time alone would be about the wall time
    assert sum(r.seconds for r in replies) <= 1.1 * wall
    assert max(r.seconds for r in replies) < 0.8 * wall


def test_a_waiting_request_gives_up_when_its_time_is_up(backend):
    first = threading.Thread(target=lambda: backend.chat(request()))
    first.start()
    time.sleep(0.05)
    with pytest.raises(DeadlineExceeded, match="waiting"):
        backend.chat(request(timeout_s=0.01))
    first.join()


def test_an_unsafe_schema_is_refused_before_llama_cpp_sees_it(backend):
    with pytest.raises(LLMError, match="empty enum"):
        backend.chat(request(json_schema={"type": "object", "properties": {"a": {"type": "string", "enum": []}},
                                          "required": ["a"]}))


def test_a_prompt_larger_than_the_context_is_an_error(backend):
    huge = request(messages=[{"role": "user", "content": "word " * 5000}])
    with pytest.raises(LLMError, match="llama.cpp"):
        backend.chat(huge)


ENUM_SCHEMA = {"type": "object", "properties": {
    "picks": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "object", "properties": {
        "id": {"type": "string", "enum": ["c1", "c2", "c3", "c4"]},
        "reason": {"type": "string", "maxLength": 60}}, "required": ["id", "reason"]}}},
    "required": ["picks"]}


@pytest.mark.parametrize("schema", [SCHEMA, ENUM_SCHEMA], ids=["strings", "enum-ids"])
def test_the_lazy_grammar_gives_the_reply_the_full_grammar_gives(backend, tmp_path_factory, schema):
    full = LlamaCppBackend(backend.model_path, n_ctx=2048, lazy_grammar=False)
    for ask in (request(json_schema=schema), request(json_schema=schema, timeout_s=60)):
        backend.reset()
        full.reset()
        lazy_reply, full_reply = backend.chat(ask), full.chat(ask)
        assert lazy_reply.text == full_reply.text and lazy_reply.text.startswith("{")
        assert (lazy_reply.prompt_tokens, lazy_reply.completion_tokens) == (full_reply.prompt_tokens,
                                                                            full_reply.completion_tokens)


def test_threads_default_to_the_usable_cores(backend):
    from promptrec.llm.llamacpp import usable_cores

    assert backend.n_threads == usable_cores() and backend._llm.n_threads_batch == usable_cores()


def test_a_kept_state_spares_the_shared_prefix_after_an_unrelated_call(tmp_path_factory):
    system = "You write one sentence telling a person why they may enjoy a title. " * 10
    schema = {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 60}}, "required": ["reason"]}

    def ask(backend, system_text, user):
        before = backend._llm.evaluated
        reply = backend.chat(ChatRequest(messages=[{"role": "system", "content": system_text},
                                                   {"role": "user", "content": user}],
                                         json_schema=schema, max_tokens=30))
        return reply, backend._llm.evaluated - before

    path = resolve_gguf("small", tmp_path_factory.mktemp("models"))
    replies = {}
    for cache_mb in (0, 64):
        backend = LlamaCppBackend(path, n_ctx=2048, prefix_cache_mb=cache_mb)
        ask(backend, system, "Toy Story (1995) and Up (2009)")
        ask(backend, "You read requests.", "something funny")  # another prompt in between
        reply, evaluated = ask(backend, system, "Alien (1979) and Aliens (1986)")
        replies[cache_mb] = (reply.text, reply.prompt_tokens, evaluated)
    (plain, prompt, evaluated_plain), (kept, prompt_kept, evaluated_kept) = replies[0], replies[64]
    assert kept == plain and prompt_kept == prompt
    assert evaluated_plain >= prompt  # without kept states: the whole prompt again
    assert evaluated_kept < prompt // 2  # with them: only what follows the system prompt
