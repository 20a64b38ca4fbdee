"""Every schema is checked before llama.cpp compiles it into a grammar (a bad one used to kill the process)."""

import pytest
from pydantic import BaseModel

from promptrec.errors import ModelError
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.llm.schema import SchemaError, check_schema
from promptrec.prompts import parse_template
from promptrec.rerank import RerankReply, rerank_schema
from promptrec.types import ItemFeatures, UserProfile

STRING = {"type": "string"}


@pytest.mark.parametrize("schema, problem", [
    ({"type": "string", "enum": []}, "empty enum"),
    ({"type": "object", "properties": {"a": STRING}, "required": ["b"]}, "not among the properties"),
    ({"type": "array", "items": STRING, "minItems": 3, "maxItems": 2}, "minItems 3 is above maxItems 2"),
    ({"type": "string", "minLength": 9, "maxLength": 2}, "minLength 9 is above maxLength 2"),
    ({"type": "string", "maxLength": -1}, "non-negative"),
    ({"type": "string", "maxLength": 10**6}, "above the supported"),
    ({"type": "array", "items": STRING, "maxItems": True}, "non-negative integer"),
    ({"type": "strin"}, "unknown type"),
    ({"type": "string", "pattern": "[a-z]+"}, "anchored"),
    ({"$ref": "#/$defs/Missing"}, "does not name a definition"),
    ({"anyOf": []}, "non-empty list"),
    ({"type": "object", "properties": {"a": "string"}}, "must be an object"),
    ({"type": "object", "properties": {"picks": {"type": "array", "items": {"type": "string", "enum": []}}}},
     "#/properties/picks/items"),
    ("not a schema", "JSON object"),
])
def test_unsafe_schemas_are_rejected_with_the_place_and_problem(schema, problem):
    with pytest.raises(SchemaError, match=problem.replace("[", r"\[")) as caught:
        check_schema(schema)
    assert isinstance(caught.value, ModelError)


def test_deeply_nested_schema_is_rejected():
    schema: dict = {"type": "string"}
    for _ in range(40):
        schema = {"type": "array", "items": schema}
    with pytest.raises(SchemaError, match="deeper"):
        check_schema(schema)


@pytest.mark.parametrize("model", [UserProfile, ItemFeatures, RerankReply])
def test_the_schemas_promptrec_sends_pass(model):
    check_schema(model.model_json_schema())


@pytest.mark.parametrize("history", [[], ["H1"], ["H1", "H2", "H3"]])
def test_rerank_schemas_pass_for_any_history_length(history):
    check_schema(rerank_schema(["C1", "C2", "C3"], history, 2))


def test_rerank_schema_without_history_has_no_citation_field():
    schema = rerank_schema(["C1", "C2"], [], 2)
    pick = schema["properties"]["picks"]["items"]
    assert set(pick["properties"]) == {"id", "reason"} and pick["required"] == ["id", "reason"]
    assert "enum" not in str(pick["properties"]["reason"])


class Reply(BaseModel):
    answer: str


def test_a_bad_schema_is_a_counted_error_and_never_reaches_the_backend():
    backend = ScriptedLLM({"answer": "x"})
    client = LLMClient(backend)
    template = parse_template("t", "### system\ns\n### user\n$x")
    result = client.generate(template, Reply, {"x": "y"}, schema={"type": "string", "enum": []})
    assert result.value is None and "empty enum" in result.error and "reply schema rejected" in result.error
    assert client.stats.errors == 1 and backend.requests == []
