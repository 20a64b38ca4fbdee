"""In-process llama.cpp through llama-cpp-python, with schema-constrained JSON output."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .base import LLMError
from .deadline import DeadlineExceeded
from .resolve import fingerprint
from .schema import check_schema
from .types import ChatRequest, ChatResponse


class LlamaCppBackend:
    """A local GGUF model run in this process.

    One request runs at a time (a lock). A request with a ``timeout_s`` waits for the lock at most
    that long and is generated token by token, stopping as soon as the time is up. ``seconds``
    measures the model's own work only, not the wait for the lock.

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
            check_schema(request.json_schema)  # a schema llama.cpp cannot compile would kill the process
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        timeout = request.timeout_s
        if not self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            raise DeadlineExceeded(f"the request's deadline passed while waiting for {self.model_path.name} "
                                   "(busy with another request)")
        try:
            start = time.perf_counter()
            stop_at = None if timeout is None else time.monotonic() + max(0.0, timeout - (time.perf_counter() - start))
            try:
                text, prompt_tokens, completion_tokens = (
                    self._complete(kwargs) if stop_at is None else self._stream(kwargs, stop_at)
                )
            except LLMError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure inside llama.cpp (grammar, context, ...) is a failed call
                raise LLMError(f"llama.cpp failed on the request ({type(err).__name__}: {err})") from err
            seconds = time.perf_counter() - start
        finally:
            self._lock.release()
        return ChatResponse(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, seconds=seconds)

    def _complete(self, kwargs: dict) -> tuple[str, int, int]:
        out = self._llm.create_chat_completion(**kwargs)
        usage = out.get("usage") or {}
        text = out["choices"][0]["message"]["content"] or ""
        return text, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)

    def _stream(self, kwargs: dict, stop_at: float) -> tuple[str, int, int]:
        """Generate chunk by chunk; stop generating (and raise) when ``stop_at`` passes."""
        sampled = [0]

        def count(_input_ids, scores):  # called once per sampled token
            sampled[0] += 1
            return scores

        chunks = self._llm.create_chat_completion(**kwargs, stream=True, logits_processor=[count])
        parts: list[str] = []
        finish = None
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                parts.append(choice["delta"].get("content") or "")
                finish = choice.get("finish_reason") or finish
                if time.monotonic() >= stop_at:
                    raise DeadlineExceeded(
                        f"the request's deadline passed during generation; stopped after {sampled[0]} tokens"
                    )
        finally:
            chunks.close()  # ends llama.cpp's generation loop
        # the end-of-text token is sampled but not counted; the last token is never evaluated
        completion = sampled[0] - 1 if finish == "stop" else sampled[0]
        prompt = self._llm.n_tokens - completion + (0 if finish == "stop" else 1)
        return "".join(parts), max(0, prompt), max(0, completion)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
