"""A scripted chat model for tests: replies are queued, or computed from the request."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

from .base import LLMError
from .types import ChatRequest, ChatResponse

Reply = str | dict | list | BaseException | Callable[[ChatRequest], Any]


class ScriptedLLM:
    """Returns queued replies in order (dicts are sent as JSON; exceptions are raised).

    When the queue is empty, ``default`` answers (a reply or a function of the request);
    with no default, a call raises :class:`LLMError`. Every request is kept in ``requests``.
    """

    def __init__(self, *replies: Reply, default: Reply | None = None, model_id: str = "scripted") -> None:
        self.model_id = model_id
        self.queue: deque[Reply] = deque(replies)
        self.default = default
        self.requests: list[ChatRequest] = []

    def enqueue(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        reply = self.queue.popleft() if self.queue else self.default
        if reply is None:
            raise LLMError("ScriptedLLM has no reply queued")
        if callable(reply) and not isinstance(reply, type):
            reply = reply(request)
        if isinstance(reply, BaseException):
            raise reply
        text = reply if isinstance(reply, str) else json.dumps(reply)
        prompt = sum(len(m["content"].split()) for m in request.messages)
        return ChatResponse(text=text, prompt_tokens=prompt, completion_tokens=len(text.split()))

    def count_tokens(self, text: str) -> int:
        return len(text.split())
