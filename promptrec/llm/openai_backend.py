"""OpenAI, or any OpenAI-compatible server (llama.cpp's ``llama_cpp.server``, vLLM, ...), via the openai SDK."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse

from .base import LLMError
from .tokens import tiktoken_encoding
from .types import ChatRequest, ChatResponse

OPENAI_HOST = "api.openai.com"
PLACEHOLDER_KEY = "sk-no-key-sent"


def is_openai_url(base_url: str | None) -> bool:
    return base_url is None or urlparse(base_url).hostname == OPENAI_HOST


class OpenAIBackend:
    """A chat model behind an OpenAI-compatible HTTP API.

    The API key goes only to api.openai.com unless ``send_key_to_custom_url`` is set, so a
    local server never receives a real key by accident.

    Structured output: api.openai.com gets ``response_format={"type": "json_schema", ...}``;
    other servers get ``{"type": "json_object", "schema": ...}``, which llama.cpp's server honours
    (its ``json_schema`` mode fails with HTTP 500).

    Args:
        model: The API model id.
        base_url: The server's ``/v1`` URL; None for OpenAI.
        api_key: The key; falls back to ``OPENAI_API_KEY``.
        send_key_to_custom_url: Also send the key to a non-OpenAI URL.
        timeout_s: Per-request timeout.
        tiktoken_cache: Folder for tiktoken's BPE files.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        send_key_to_custom_url: bool = False,
        timeout_s: float = 120.0,
        tiktoken_cache: Path | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise LLMError("the OpenAI backend needs the openai SDK: pip install 'promptrec[openai]'") from None
        self._openai = openai
        key = api_key or os.environ.get("OPENAI_API_KEY")
        official = is_openai_url(base_url)
        if official and not key:
            raise LLMError("no OpenAI API key: set OPENAI_API_KEY or PROMPTREC_LLM__API_KEY")
        if not official and not send_key_to_custom_url:
            key = PLACEHOLDER_KEY
        self.official = official
        self.model = model
        self.model_id = f"openai:{model}" if official else f"openai-compatible:{model}@{base_url}"
        self.sent_key = key
        self._client = openai.OpenAI(base_url=base_url, api_key=key or PLACEHOLDER_KEY, timeout=timeout_s, max_retries=2)
        self._server_tokenize: bool | None = None
        self._tiktoken_cache = str(tiktoken_cache or Path.home() / ".cache" / "promptrec" / "tiktoken")

    def _response_format(self, schema: dict) -> dict:
        if self.official:
            return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": False}}
        return {"type": "json_object", "schema": schema}

    def chat(self, request: ChatRequest) -> ChatResponse:
        kwargs: dict = {
            "model": self.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        }
        if request.json_schema is not None:
            kwargs["response_format"] = self._response_format(request.json_schema)
        start = time.perf_counter()
        try:
            out = self._client.chat.completions.create(**kwargs)
        except self._openai.OpenAIError as err:
            raise LLMError(f"{self.model_id}: {err}") from err
        usage = out.usage
        return ChatResponse(
            text=out.choices[0].message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            seconds=time.perf_counter() - start,
        )

    def count_tokens(self, text: str) -> int:
        """tiktoken for OpenAI models; a llama.cpp server's own tokenizer when it offers one."""
        if not self.official and self._server_tokenize is not False:
            count = self._count_on_server(text)
            if count is not None:
                return count
        return len(tiktoken_encoding(self.model, self._tiktoken_cache).encode(text))

    def _count_on_server(self, text: str) -> int | None:
        import httpx

        root = str(self._client.base_url).rstrip("/").removesuffix("/v1")
        try:
            reply = httpx.post(f"{root}/extras/tokenize", json={"input": text}, timeout=10)
            reply.raise_for_status()
            self._server_tokenize = True
            return len(reply.json()["tokens"])
        except (httpx.HTTPError, KeyError, ValueError):
            self._server_tokenize = False
            return None
