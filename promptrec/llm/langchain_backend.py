"""Any LangChain chat model as a promptrec backend."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .base import LLMError
from .tokens import use_offline_tiktoken
from .types import ChatRequest, ChatResponse

_ROLES = {"system": "SystemMessage", "user": "HumanMessage", "assistant": "AIMessage"}


class LangChainBackend:
    """Wrap a LangChain ``BaseChatModel`` (``ChatOpenAI``, ``ChatLlamaCpp``, ...).

    The JSON schema travels inside the system message (every chat model can read it); the reply
    is validated by promptrec like any other backend's.

    Example:
        >>> from langchain_openai import ChatOpenAI  # doctest: +SKIP
        >>> backend = LangChainBackend(ChatOpenAI(base_url="http://127.0.0.1:8080/v1", api_key="x"))  # doctest: +SKIP
    """

    def __init__(self, chat_model, model_id: str | None = None, tiktoken_cache: Path | None = None) -> None:
        try:
            from langchain_core import messages
        except ImportError:
            raise LLMError("the LangChain backend needs: pip install 'promptrec[langchain]'") from None
        self._messages = messages
        # LangChain's OpenAI models count tokens with tiktoken, which would download its files
        use_offline_tiktoken(tiktoken_cache or Path.home() / ".cache" / "promptrec" / "tiktoken")
        self._model = chat_model
        name = getattr(chat_model, "model_name", None) or getattr(chat_model, "model", None) or type(chat_model).__name__
        self.model_id = model_id or f"langchain:{name}"

    def _convert(self, request: ChatRequest) -> list:
        out = []
        for message in request.messages:
            content = message["content"]
            if message["role"] == "system" and request.json_schema is not None:
                content += "\n\nReply with one JSON object matching this JSON schema:\n" + json.dumps(request.json_schema)
            out.append(getattr(self._messages, _ROLES[message["role"]])(content=content))
        return out

    def chat(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        try:
            reply = self._model.invoke(
                self._convert(request), temperature=request.temperature, max_tokens=request.max_tokens
            )
        except Exception as err:  # LangChain integrations raise their own error types
            raise LLMError(f"{self.model_id}: {err}") from err
        usage = getattr(reply, "usage_metadata", None) or {}
        return ChatResponse(
            text=reply.content if isinstance(reply.content, str) else json.dumps(reply.content),
            prompt_tokens=usage.get("input_tokens", 0),
            completion_tokens=usage.get("output_tokens", 0),
            seconds=time.perf_counter() - start,
        )

    def count_tokens(self, text: str) -> int:
        return self._model.get_num_tokens(text)
