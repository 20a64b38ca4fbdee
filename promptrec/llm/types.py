"""Requests to and replies from a chat model, and the running cost counters."""

from __future__ import annotations

import statistics
from typing import Any

from pydantic import BaseModel, Field


class ChatRequest(BaseModel):
    """One chat completion request, backend-neutral."""

    messages: list[dict[str, str]]
    json_schema: dict[str, Any] | None = Field(None, description="Constrain the reply to JSON of this schema.")
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    timeout_s: float | None = Field(
        None, exclude=True,
        description="Seconds left for this call (the request's deadline); not part of the cache key.",
    )


class ChatResponse(BaseModel):
    """The model's reply text and its token usage."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    seconds: float = 0.0


class LLMStats(BaseModel):
    """What the language model cost and how often its output could not be used."""

    calls: int = Field(0, description="Requests that reached the model (cache misses).")
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    invalid_outputs: int = Field(0, description="Replies that failed JSON/schema/id validation.")
    errors: int = Field(0, description="Requests that raised (backend down, timeout, ...).")
    deadline_misses: int = Field(0, description="Calls cut short or not made because the request's deadline passed.")
    seconds: list[float] = Field(
        default_factory=list, description="Wall time of each model call (the model's own work, not waits for it)."
    )

    def add(self, response: ChatResponse) -> None:
        if response.cached:
            self.cache_hits += 1
            return
        self.calls += 1
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.seconds.append(response.seconds)

    def summary(self) -> dict[str, float | int]:
        secs = sorted(self.seconds)
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "invalid_outputs": self.invalid_outputs,
            "errors": self.errors,
            "call_seconds_p50": round(statistics.median(secs), 3) if secs else 0.0,
            "call_seconds_total": round(sum(secs), 3),
        }
