"""OpenAI, or any OpenAI-compatible server (llama.cpp's ``llama_cpp.server``, vLLM, ...), via the openai SDK."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse

from .base import LLMError
from .deadline import DeadlineExceeded, current_deadline
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
        timeout_s: Per-request timeout (a request's own ``timeout_s``, the time left before its
            deadline, is used when it is shorter).
        max_retries: Retries of a failed attempt (connection error, timeout, 429, 5xx), made only
            while the request's time allows.
        max_concurrency: Requests the batch jobs send at once (:func:`promptrec.llm.parallel.bounded_map`
            over :meth:`chat`, which is safe to call from several threads).
        tiktoken_cache: Folder for tiktoken's BPE files.
    """

    RETRY_PAUSE_S = 0.5

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        send_key_to_custom_url: bool = False,
        timeout_s: float = 120.0,
        tiktoken_cache: Path | None = None,
        max_retries: int = 2,
        max_concurrency: int = 1,
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
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_concurrency = max(1, int(max_concurrency))
        # retries are made here, within the request's time, not by the SDK
        self._client = openai.OpenAI(base_url=base_url, api_key=key or PLACEHOLDER_KEY, timeout=timeout_s, max_retries=0)
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
        out = self._create(kwargs, request.timeout_s)
        usage = out.usage
        return ChatResponse(
            text=out.choices[0].message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            seconds=time.perf_counter() - start,
        )

    def _create(self, kwargs: dict, budget_s: float | None):
        """One completion, retried on transient failures while ``budget_s`` (None: no limit) lasts."""
        openai = self._openai
        stop_at = None if budget_s is None else time.monotonic() + budget_s
        transient = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        attempt = 0
        while True:
            left = None if stop_at is None else stop_at - time.monotonic()
            if left is not None and left <= 0:
                raise DeadlineExceeded(f"the request's deadline passed before {self.model_id} answered")
            timeout = self.timeout_s if left is None else min(self.timeout_s, left)
            try:
                return self._client.chat.completions.create(**kwargs, timeout=timeout)
            except transient as err:
                attempt += 1
                pause = self.RETRY_PAUSE_S * 2 ** (attempt - 1)
                left = None if stop_at is None else stop_at - time.monotonic()
                if left is not None and left <= pause:
                    raise DeadlineExceeded(
                        f"the request's deadline passed while waiting for {self.model_id} "
                        f"({attempt} attempt{'s' if attempt > 1 else ''}, last: {err})"
                    ) from err
                if attempt > self.max_retries:
                    raise LLMError(f"{self.model_id}: {err} (after {attempt} attempts)") from err
                time.sleep(pause)
            except openai.OpenAIError as err:
                raise LLMError(f"{self.model_id}: {err}") from err

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
        limit = current_deadline()
        if limit is not None and limit.expired:
            return None  # no time to ask the server: count locally this once
        try:
            timeout = 10.0 if limit is None else min(10.0, limit.remaining())
            reply = httpx.post(f"{root}/extras/tokenize", json={"input": text}, timeout=timeout)
            reply.raise_for_status()
            self._server_tokenize = True
            return len(reply.json()["tokens"])
        except (httpx.HTTPError, KeyError, ValueError):
            self._server_tokenize = False
            return None
