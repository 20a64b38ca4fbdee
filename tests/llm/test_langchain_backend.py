from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import BaseModel

from promptrec.llm import LLMClient
from promptrec.llm.langchain_backend import LangChainBackend
from promptrec.prompts import parse_template

TEMPLATE = parse_template("t", "### system\nAnswer.\n### user\nQ: $q")


class Reply(BaseModel):
    answer: str


def test_any_langchain_chat_model_is_a_backend():
    chat = FakeListChatModel(responses=['{"answer": "42"}', "not json"])
    client = LLMClient(LangChainBackend(chat, model_id="fake"))
    assert client.generate(TEMPLATE, Reply, {"q": "life"}).value.answer == "42"
    bad = client.generate(TEMPLATE, Reply, {"q": "again"})
    assert bad.value is None and client.stats.invalid_outputs == 1 and client.stats.calls == 2


def test_schema_travels_in_the_system_message():
    backend = LangChainBackend(FakeListChatModel(responses=["{}"]), model_id="fake")
    from promptrec.llm import ChatRequest

    messages = backend._convert(ChatRequest(messages=TEMPLATE.render(q="x"), json_schema={"type": "object"}))
    assert type(messages[0]).__name__ == "SystemMessage" and '{"type": "object"}' in messages[0].content
    assert type(messages[1]).__name__ == "HumanMessage" and messages[1].content == "Q: x"
