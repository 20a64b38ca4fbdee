"""The OpenAI backend against a local HTTP server that speaks the chat-completions protocol."""

import http.server
import json
import threading

import pytest

from promptrec.llm import ChatRequest, LLMError
from promptrec.llm.openai_backend import PLACEHOLDER_KEY, OpenAIBackend


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Recorder.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path.endswith("/extras/tokenize"):
            reply = {"tokens": list(range(len(body["input"].split())))}
        else:
            reply = {
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": '{"answer": "ok"}'}}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1"
    httpd.shutdown()


def ask(backend):
    return backend.chat(ChatRequest(messages=[{"role": "user", "content": "hi"}], json_schema={"type": "object"}))


def test_key_is_not_sent_to_a_custom_url_by_default(server):
    backend = OpenAIBackend("local", base_url=server, api_key="sk-secret")
    reply = ask(backend)
    assert reply.text == '{"answer": "ok"}' and reply.prompt_tokens == 7 and reply.completion_tokens == 3
    assert Recorder.seen[0]["auth"] == f"Bearer {PLACEHOLDER_KEY}"
    assert "sk-secret" not in json.dumps(Recorder.seen)


def test_key_is_sent_when_asked(server):
    ask(OpenAIBackend("local", base_url=server, api_key="sk-secret", send_key_to_custom_url=True))
    assert Recorder.seen[0]["auth"] == "Bearer sk-secret"


def test_custom_server_gets_json_object_with_schema(server):
    ask(OpenAIBackend("local", base_url=server))
    body = Recorder.seen[0]["body"]
    assert body["response_format"] == {"type": "json_object", "schema": {"type": "object"}}
    assert body["temperature"] == 0.0 and body["model"] == "local"


def test_official_api_gets_json_schema_mode():
    backend = OpenAIBackend("gpt-4o-mini", api_key="sk-x")
    assert backend._response_format({"type": "object"})["type"] == "json_schema"
    assert backend.model_id == "openai:gpt-4o-mini"


def test_official_api_without_a_key_fails_clearly(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        OpenAIBackend("gpt-4o-mini")


def test_tokens_counted_by_the_server_tokenizer_when_offered(server):
    assert OpenAIBackend("local", base_url=server).count_tokens("one two three") == 3


def test_unreachable_server_is_an_llm_error():
    backend = OpenAIBackend("local", base_url="http://127.0.0.1:9/v1", timeout_s=2)
    backend._client = backend._client.with_options(max_retries=0)
    with pytest.raises(LLMError):
        ask(backend)


def test_tiktoken_counts_offline_for_openai_models(tmp_path):
    backend = OpenAIBackend("gpt-4o", api_key="sk-x", tiktoken_cache=tmp_path)
    assert backend.count_tokens("hello world") == 2
    assert backend.count_tokens("hello world, " * 50) > 50
