"""Turn pydantic's validation and pydantic-settings' parsing failures into one :class:`ConfigError`
that names the ``PROMPTREC_*`` variable, the bad value and what is allowed."""

from __future__ import annotations

import json
import os
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings

from .errors import ConfigError

PREFIX = "PROMPTREC_"
DELIMITER = "__"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``X`` or ``X | None``), if any."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _split(model: type[BaseModel], loc: tuple) -> tuple[list[str], list[str]]:
    """``loc`` split into the field path (which names the variable) and what lies below it (dict keys)."""
    fields: list[str] = []
    current: type[BaseModel] | None = model
    rest = list(loc)
    while rest and current is not None and isinstance(rest[0], str) and rest[0] in current.model_fields:
        name = rest.pop(0)
        fields.append(name)
        current = _model_in(current.model_fields[name].annotation)
    return fields, [str(part) for part in rest]


def variable(fields: list[str]) -> str:
    """``["fusion", "weights"]`` -> ``PROMPTREC_FUSION__WEIGHTS``."""
    return PREFIX + DELIMITER.join(fields).upper()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _one(model: type[BaseModel], error: dict, top_level: bool) -> str:
    fields, below = _split(model, tuple(error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
        known = _model_in_path(model, fields)
        if known is not None:
            message += f"; known: {', '.join(known.model_fields)}"
        fields, below = fields + below[:1], below[1:]
    name = ".".join(fields + below) or model.__name__
    where = f"{variable(fields)} ({name})" if top_level and fields else name
    shown = "" if error["type"] in ("missing", "extra_forbidden") else f" = {_shown(error['input'])}"
    return f"{where}{shown}: {message}"


def _model_in_path(model: type[BaseModel], fields: list[str]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for name in fields:
        if current is None or name not in current.model_fields:
            return None
        current = _model_in(current.model_fields[name].annotation)
    return current


def config_error(err: ValidationError, model: type[BaseModel]) -> ConfigError:
    """One ConfigError listing every invalid setting of ``err`` with its variable and what is allowed.

    ``model`` is the class that was being built: the top-level settings (variables are named) or
    one section built on its own (field names are given).
    """
    top_level = issubclass(model, BaseSettings)
    details = list(_flatten(err.errors(include_url=False)))
    problems = "; ".join(_one(model, e, top_level) for e in details)
    error = ConfigError(f"invalid setting {problems}")
    error.details = details  # type: ignore[attr-defined] - read by an enclosing model's conversion
    return error


def _flatten(errors: list[dict], prefix: tuple = ()):
    """Errors of sections validated inside the settings (their ConfigError wrapped by pydantic) unwrapped."""
    for error in errors:
        inner = (error.get("ctx") or {}).get("error")
        details = getattr(inner, "details", None)
        if isinstance(inner, ConfigError) and details:
            yield from _flatten(details, prefix + tuple(error["loc"]))
        else:
            yield {**error, "loc": prefix + tuple(error["loc"])}


def _is_complex(model: type[BaseModel], fields: list[str]) -> bool:
    """Whether pydantic-settings reads this variable as JSON (a section, a dict or a list)."""
    current: type[BaseModel] | None = model
    annotation: Any = None
    for name in fields:
        if current is None or name not in current.model_fields:
            return False
        annotation = current.model_fields[name].annotation
        current = _model_in(annotation)
    return current is not None or get_origin(annotation) in (dict, list) or annotation in (dict, list)


def settings_source_error(err: Exception, model: type[BaseModel]) -> ConfigError:
    """A ConfigError for a variable pydantic-settings could not parse (JSON that is not valid)."""
    for key, value in sorted(os.environ.items()):
        if not key.upper().startswith(PREFIX):
            continue
        fields = key[len(PREFIX):].lower().split(DELIMITER)
        if not _is_complex(model, fields):
            continue
        try:
            json.loads(value)
        except json.JSONDecodeError as bad:
            example = _example(model, fields)
            return ConfigError(
                f"invalid setting {key} = {_shown(value)}: not valid JSON ({bad.msg} at column {bad.colno})"
                + (f"; expected e.g. {example}" if example else "")
            )
    return ConfigError(f"invalid setting: {err}; check the PROMPTREC_* variables (JSON values need double quotes)")


def _example(model: type[BaseModel], fields: list[str]) -> str | None:
    """The default value of the setting, as JSON, to show what a valid one looks like."""
    current: Any = model
    for name in fields:
        info = current.model_fields.get(name) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if info is None:
            return None
        current = info.get_default(call_default_factory=True)
        if isinstance(current, BaseModel):
            current = type(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        current = current().model_dump(mode="json")
    if isinstance(current, (dict, list)) and current:
        return json.dumps(current)
    return None
