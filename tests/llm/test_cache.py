import multiprocessing as mp
import sqlite3

from promptrec.llm import ChatRequest, ChatResponse, LLMCache, cache_key


def request(**changes):
    base = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    return ChatRequest(**{**base, **changes})


def test_key_depends_on_model_template_messages_and_parameters():
    key = cache_key("m", "t1", request())
    assert key == cache_key("m", "t1", request())
    assert key != cache_key("m2", "t1", request())
    assert key != cache_key("m", "t2", request())
    assert key != cache_key("m", "t1", request(messages=[{"role": "user", "content": "hi!"}]))
    assert key != cache_key("m", "t1", request(max_tokens=11))
    assert key != cache_key("m", "t1", request(temperature=0.5))
    assert key != cache_key("m", "t1", request(json_schema={"type": "object"}))


def test_persists_across_instances(tmp_path):
    path = tmp_path / "c.sqlite"
    LLMCache(path).put("k", "m", "t", ChatResponse(text="hello", prompt_tokens=3, completion_tokens=1))
    again = LLMCache(path).get("k")
    assert again.text == "hello" and again.cached and again.prompt_tokens == 3
    assert LLMCache(path).get("other") is None


def _writer(path, worker, n):
    cache = LLMCache(path)
    for i in range(n):
        cache.put(f"{worker}-{i}", "m", "t", ChatResponse(text=f"{worker}:{i}"))
        cache.put("shared", "m", "t", ChatResponse(text="same"))


def test_concurrent_writers_do_not_corrupt(tmp_path):
    path = tmp_path / "c.sqlite"
    LLMCache(path)
    procs = [mp.get_context("spawn").Process(target=_writer, args=(str(path), w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = LLMCache(path)
    assert len(cache) == 4 * 60 + 1
    assert cache.get("3-59").text == "3:59"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
