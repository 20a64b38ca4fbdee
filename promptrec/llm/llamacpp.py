"""In-process llama.cpp through llama-cpp-python, with schema-constrained JSON output."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .base import LLMError
from .resolve import fingerprint
from .types import ChatRequest, ChatResponse


class LlamaCppBackend:
    """A local GGUF model run in this process.

    Args:
        model_path: The GGUF file.
        n_ctx: Context window in tokens.
        n_threads: CPU threads; None lets llama.cpp choose.
        seed: Sampling seed (replies are greedy at temperature 0 anyway).
    """

    def __init__(self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LLMError("the local backend needs llama-cpp-python: pip install 'promptrec[local]'") from None
        self.model_path = Path(model_path)
        self.model_id = f"{self.model_path.name}@{fingerprint(self.model_path)}"
        self._lock = threading.Lock()
        self._llm = Llama(model_path=str(self.model_path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)

    @property
    def n_ctx(self) -> int:
        return self._llm.n_ctx()

    def chat(self, request: ChatRequest) -> ChatResponse:
        kwargs: dict = {
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        }
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        start = time.perf_counter()
        try:
            with self._lock:
                out = self._llm.create_chat_completion(**kwargs)
        except ValueError as err:  # e.g. the prompt does not fit the context
            raise LLMError(f"llama.cpp refused the request: {err}") from err
        usage = out.get("usage") or {}
        return ChatResponse(
            text=out["choices"][0]["message"]["content"] or "",
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            seconds=time.perf_counter() - start,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
