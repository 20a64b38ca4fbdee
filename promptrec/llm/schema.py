"""Checks a JSON schema before it is turned into a decoding grammar.

llama.cpp compiles the schema of a request into a grammar in native code; a schema it cannot
compile (an empty ``enum``, a ``required`` property that does not exist, ``minItems`` above
``maxItems``, ...) can kill the whole process, so no fallback could run. Every schema is checked
here first; a bad one raises :class:`SchemaError`, which the client counts as a failed call.
"""

from __future__ import annotations

from typing import Any

from .base import LLMError

TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}
MAX_DEPTH = 24
MAX_LENGTH = 4000  # characters one string may be constrained to (the grammar repeats a rule this often)
MAX_ITEMS = 200
_COMBINERS = ("anyOf", "oneOf", "allOf")
_BOUNDS = (("minItems", "maxItems", MAX_ITEMS), ("minLength", "maxLength", MAX_LENGTH),
           ("minProperties", "maxProperties", MAX_ITEMS))


class SchemaError(LLMError):
    """A JSON schema that cannot be compiled into a grammar safely."""


def check_schema(schema: Any) -> None:
    """Raise :class:`SchemaError` naming the first problem in ``schema`` (a JSON schema as a dict)."""
    if not isinstance(schema, dict):
        raise SchemaError(f"the reply schema must be a JSON object, not {type(schema).__name__}")
    defs = {**schema.get("$defs", {}), **schema.get("definitions", {})} if isinstance(schema, dict) else {}
    _check(schema, "#", defs, 0)


def _fail(where: str, problem: str) -> SchemaError:
    return SchemaError(f"reply schema rejected at {where}: {problem}; the request was not sent to the model")


def _count(node: dict, key: str, where: str, ceiling: int) -> int | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, f"{key} must be a non-negative integer, not {value!r}")
    if value > ceiling:
        raise _fail(where, f"{key} {value} is above the supported {ceiling}")
    return value


def _check(node: Any, where: str, defs: dict, depth: int) -> None:
    if isinstance(node, bool):
        return  # true/false are valid schemas
    if not isinstance(node, dict):
        raise _fail(where, f"a schema must be an object, not {type(node).__name__}")
    if depth > MAX_DEPTH:
        raise _fail(where, f"nested deeper than {MAX_DEPTH} levels")
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if isinstance(kind, list) and not kind:
        raise _fail(where, "an empty type list allows nothing")
    for k in kinds:
        if k not in TYPES:
            raise _fail(where, f"unknown type {k!r}")
    if "enum" in node:
        enum = node["enum"]
        if not isinstance(enum, list) or not enum:
            raise _fail(where, "enum must be a non-empty list (an empty enum allows no value)")
        if any(isinstance(v, (dict, list)) for v in enum):
            raise _fail(where, "enum values must be plain values")
    for low, high, ceiling in _BOUNDS:
        lo, hi = _count(node, low, where, ceiling), _count(node, high, where, ceiling)
        if lo is not None and hi is not None and lo > hi:
            raise _fail(where, f"{low} {lo} is above {high} {hi}")
    if "pattern" in node:
        pattern = node["pattern"]
        if not isinstance(pattern, str) or not (pattern.startswith("^") and pattern.endswith("$")):
            raise _fail(where, "a pattern must be a string anchored with ^ and $")
    properties = node.get("properties", {})
    if not isinstance(properties, dict):
        raise _fail(where, "properties must be an object")
    required = node.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise _fail(where, "required must be a list of property names")
    missing = [r for r in required if r not in properties]
    if missing:
        raise _fail(where, f"required names {missing} that are not among the properties")
    for name, sub in properties.items():
        _check(sub, f"{where}/properties/{name}", defs, depth + 1)
    for key in ("items", "additionalProperties"):
        if key in node:
            _check(node[key], f"{where}/{key}", defs, depth + 1)
    for key in ("prefixItems", *_COMBINERS):
        if key in node:
            subs = node[key]
            if not isinstance(subs, list) or not subs:
                raise _fail(where, f"{key} must be a non-empty list of schemas")
            for n, sub in enumerate(subs):
                _check(sub, f"{where}/{key}/{n}", defs, depth + 1)
    if "$ref" in node:
        ref = node["$ref"]
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
        if not isinstance(ref, str) or not ref.startswith(("#/$defs/", "#/definitions/")) or name not in defs:
            raise _fail(where, f"$ref {ref!r} does not name a definition in this schema")
    if depth == 0:
        for name, sub in defs.items():
            _check(sub, f"#/$defs/{name}", defs, 1)
