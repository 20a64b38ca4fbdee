"""Structured calls: render a template, consult the cache, call the model, validate into pydantic."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ..prompts import PromptTemplate
from .base import LLMBackend, LLMError
from .cache import LLMCache, cache_key
from .deadline import DeadlineExceeded, current_deadline
from .deadline import deadline as deadline_block
from .schema import SchemaError, check_schema
from .types import ChatRequest, LLMStats

log = logging.getLogger(__name__)
T = TypeVar("T")  # a pydantic model (generate) or str (generate_text)


class LLMResult(BaseModel, Generic[T]):
    """A validated reply, or why there is none."""

    value: T | None = None
    raw: str = ""
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.value is not None


class LLMClient:
    """The one way stages talk to a model: cached, counted, validated.

    Args:
        backend: The chat model.
        cache: Reply cache; None disables caching.
        seed: Root seed passed with every request.
        temperature: 0 by default, so a rerun is identical.
    """

    def __init__(self, backend: LLMBackend, cache: LLMCache | None = None, seed: int = 0, temperature: float = 0.0):
        self.backend = backend
        self.cache = cache
        self.seed = seed
        self.temperature = temperature
        self.stats = LLMStats()
        self._recorders: list[list[tuple[str, ChatRequest]]] = []

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, ChatRequest]]]:
        """Inside this block, every request the client builds (cached or not) is appended to the
        yielded list as ``(template name, request)``: the exact prompts the product sends, for
        replaying them in benchmarks (``eval/bench_llm.py``)."""
        calls: list[tuple[str, ChatRequest]] = []
        self._recorders.append(calls)
        try:
            yield calls
        finally:
            self._recorders.remove(calls)

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    @staticmethod
    def deadline(seconds: float | None):
        """Context manager: every call made inside shares one deadline of ``seconds`` (see
        :mod:`promptrec.llm.deadline`); a call gets the time left as its timeout, and once the
        deadline has passed calls return an error (cached replies are still served)."""
        return deadline_block(seconds)

    def _ask(self, template: PromptTemplate, request: ChatRequest):
        """The reply to ``request`` (cached, recorded, under the current deadline, counted), or a
        failed :class:`LLMResult`."""
        for calls in self._recorders:
            calls.append((template.name, request))
        key = cache_key(self.model_id, template.hash, request)
        response = self.cache.get(key) if self.cache is not None else None
        if response is None:
            limit = current_deadline()
            if limit is not None:
                if limit.expired:
                    return self._fail(template, DeadlineExceeded(f"{limit.describe()} passed before the model was asked"))
                request = request.model_copy(update={"timeout_s": limit.remaining()})
            try:
                response = self.backend.chat(request)
            except LLMError as err:
                return self._fail(template, err)
            if self.cache is not None:
                self.cache.put(key, self.model_id, template.hash, response)
        self.stats.add(response)
        return response

    def generate_text(self, template: PromptTemplate, values: dict[str, str], *, max_tokens: int = 64) -> LLMResult[str]:
        """Plain text from ``template`` rendered with ``values``: no schema, no grammar (a short sentence
        costs the JSON wrapper's tokens otherwise), cached and counted like :meth:`generate`. ``value`` is
        the stripped reply, or None when the call failed or the reply is empty. The caller validates the
        text itself (it is untrusted, like every reply)."""
        request = ChatRequest(messages=template.render(**values), max_tokens=max_tokens,
                              temperature=self.temperature, seed=self.seed)
        response = self._ask(template, request)
        if isinstance(response, LLMResult):
            return response
        text = response.text.strip()
        if not text:
            self.stats.invalid_outputs += 1
            return LLMResult(raw=response.text, error="invalid output: an empty reply", cached=response.cached)
        return LLMResult(value=text, raw=response.text, cached=response.cached)

    def _fail(self, template: PromptTemplate, err: LLMError) -> LLMResult:
        self.stats.errors += 1
        if isinstance(err, DeadlineExceeded):
            self.stats.deadline_misses += 1
        log.warning("%s: model call failed: %s", template.name, err)
        return LLMResult(error=f"model call failed: {err}")

    def generate(
        self,
        template: PromptTemplate,
        output: type[T],
        values: dict[str, str],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        check: Callable[[T], None] | None = None,
    ) -> LLMResult[T]:
        """Ask the model to fill ``output`` from ``template`` rendered with ``values``.

        Args:
            schema: The JSON schema the reply is constrained to (``output``'s schema by default);
                a narrower one (e.g. an enum of allowed ids) can be passed.
            check: Extra validation of the parsed value; raise ValueError to reject it.

        Returns:
            The result; ``value`` is None when the model failed or its reply was invalid
            (counted in ``stats.invalid_outputs`` / ``stats.errors``), so callers fall back.
            A schema that cannot be compiled safely (:func:`~promptrec.llm.schema.check_schema`),
            a backend that raises, and a passed deadline are counted errors, never exceptions.
        """
        request = ChatRequest(
            messages=template.render(**values),
            json_schema=schema or output.model_json_schema(),
            max_tokens=max_tokens,
            temperature=self.temperature,
            seed=self.seed,
        )
        try:
            check_schema(request.json_schema)
        except SchemaError as err:
            return self._fail(template, err)
        response = self._ask(template, request)
        if isinstance(response, LLMResult):
            return response
        try:
            # strict=False lets a raw newline or tab inside a string through; the schema still decides
            value = output.model_validate(json.loads(response.text, strict=False))
            if check is not None:
                check(value)
        except (ValidationError, ValueError) as err:
            self.stats.invalid_outputs += 1
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.info("%s: invalid model output (%s): %.200r", template.name, reason, response.text)
            return LLMResult(raw=response.text, error=f"invalid output: {reason}", cached=response.cached)
        return LLMResult(value=value, raw=response.text, cached=response.cached)
