import pytest
from pydantic import BaseModel

from promptrec.llm import LLMCache, LLMClient, LLMError, ScriptedLLM
from promptrec.prompts import parse_template

TEMPLATE = parse_template("t", "### system\nBe brief.\n### user\nName: $name")


class Reply(BaseModel):
    answer: str


def test_valid_reply_is_parsed_and_counted():
    client = LLMClient(ScriptedLLM({"answer": "yes"}))
    result = client.generate(TEMPLATE, Reply, {"name": "x"})
    assert result.ok and result.value.answer == "yes"
    assert client.stats.calls == 1 and client.stats.invalid_outputs == 0
    request = client.backend.requests[0]
    assert request.messages[1]["content"] == "Name: x"
    assert request.json_schema["properties"]["answer"]["type"] == "string"
    assert request.temperature == 0.0


def test_second_identical_call_is_served_from_cache(tmp_path):
    backend = ScriptedLLM({"answer": "yes"})
    client = LLMClient(backend, LLMCache(tmp_path / "c.sqlite"))
    first = client.generate(TEMPLATE, Reply, {"name": "x"})
    second = LLMClient(backend, LLMCache(tmp_path / "c.sqlite")).generate(TEMPLATE, Reply, {"name": "x"})
    assert first.value == second.value and second.cached
    assert len(backend.requests) == 1


def test_template_change_misses_the_cache(tmp_path):
    backend = ScriptedLLM({"answer": "a"}, {"answer": "b"})
    client = LLMClient(backend, LLMCache(tmp_path / "c.sqlite"))
    client.generate(TEMPLATE, Reply, {"name": "x"})
    other = parse_template("t", "### system\nBe very brief.\n### user\nName: $name")
    assert client.generate(other, Reply, {"name": "x"}).value.answer == "b"


@pytest.mark.parametrize("reply", ["not json", '{"wrong": 1}', '{"answer": 5}'])
def test_invalid_reply_gives_no_value_and_is_counted(reply):
    client = LLMClient(ScriptedLLM(reply))
    result = client.generate(TEMPLATE, Reply, {"name": "x"})
    assert result.value is None and result.error.startswith("invalid output")
    assert client.stats.invalid_outputs == 1


def test_check_rejects_a_parsed_value():
    def check(value):
        if value.answer != "ok":
            raise ValueError("answer must be ok")

    result = LLMClient(ScriptedLLM({"answer": "no"})).generate(TEMPLATE, Reply, {"name": "x"}, check=check)
    assert result.value is None and "answer must be ok" in result.error


def test_backend_failure_is_an_error_not_an_exception():
    client = LLMClient(ScriptedLLM(LLMError("server down")))
    result = client.generate(TEMPLATE, Reply, {"name": "x"})
    assert result.value is None and "server down" in result.error and client.stats.errors == 1


def test_missing_placeholder_raises():
    with pytest.raises(KeyError):
        TEMPLATE.render()


def test_a_raw_newline_inside_a_string_is_accepted():
    result = LLMClient(ScriptedLLM('{"answer": "two\nlines"}')).generate(TEMPLATE, Reply, {"name": "x"})
    assert result.value.answer == "two\nlines"


def test_recording_keeps_every_request_the_client_builds_cached_or_not():
    backend = ScriptedLLM(default={"answer": "yes"})
    client = LLMClient(backend, LLMCache(None))
    client.generate(TEMPLATE, Reply, {"name": "before"})
    with client.recording() as calls:
        client.generate(TEMPLATE, Reply, {"name": "x"})
        client.generate(TEMPLATE, Reply, {"name": "x"})  # served from the cache, still recorded
    client.generate(TEMPLATE, Reply, {"name": "after"})
    assert [name for name, _ in calls] == ["t", "t"] and len(backend.requests) == 3
    assert calls[0][1] == backend.requests[1] and calls[1][1].messages[1]["content"] == "Name: x"
