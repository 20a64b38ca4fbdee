"""The one interface every language-model backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..errors import ModelError
from .types import ChatRequest, ChatResponse


class LLMError(ModelError):
    """A backend could not produce a reply (not installed, unreachable, crashed)."""


@runtime_checkable
class LLMBackend(Protocol):
    """A chat model.

    Attributes:
        model_id: Names the exact model (file name + content fingerprint, or API model id);
            part of every cache key and every reported result.
    """

    model_id: str

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Answer one request; raise :class:`LLMError` when no reply can be had."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's own tokenizer."""
        ...
