"""Many requests at once: a local llama.cpp server with parallel slots (continuous batching), and a
bounded thread pool that keeps any concurrent backend busy.

:class:`ParallelLlamaBackend` runs llama.cpp's own server engine in this process (the ``xllamacpp``
package, extra ``batch``): ``n_parallel`` slots decode together, one batched forward pass per token
for every sequence in flight, with the same JSON-schema grammar the one-at-a-time backend uses. It
names the model exactly as :class:`~promptrec.llm.llamacpp.LlamaCppBackend` does (file name + content
fingerprint), so its replies land in the same reply-cache entries and per-model stores.

:func:`concurrency` says how many requests a backend takes at once (``max_concurrency``; 1 when it
has none), and :func:`bounded_map` runs a function over inputs on that many threads, yielding results
as they finish, with at most ``workers`` in flight (an interruption loses only those).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from .base import LLMError
from .resolve import fingerprint
from .schema import check_schema
from .types import ChatRequest, ChatResponse

A = TypeVar("A")
B = TypeVar("B")


def concurrency(backend: object) -> int:
    """How many requests ``backend`` serves at once (its ``max_concurrency``; 1 when it declares none)."""
    return max(1, int(getattr(backend, "max_concurrency", 1) or 1))


def bounded_map(fn: Callable[[A], B], inputs: Iterable[A], workers: int) -> Iterator[tuple[A, B]]:
    """``(input, fn(input))`` pairs in the order they finish, ``workers`` at a time.

    Inputs are taken lazily, so at most ``workers`` calls are in flight; an exception raised by ``fn``
    is re-raised here (callers that must not stop catch it inside ``fn``). Closing the iterator early
    (an interruption) waits only for the calls in flight."""
    if workers <= 1:
        for value in inputs:
            yield value, fn(value)
        return
    source = iter(inputs)
    pending: dict[Future, A] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promptrec-batch")
    try:
        for value in source:
            pending[pool.submit(fn, value)] = value
            if len(pending) >= workers:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                value = pending.pop(future)
                yield value, future.result()
                for nxt in source:
                    pending[pool.submit(fn, nxt)] = nxt
                    break
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


class ParallelLlamaBackend:
    """A local GGUF model served by llama.cpp's server engine in this process, ``n_parallel`` requests at once.

    Args:
        model_path: The GGUF file.
        n_parallel: Slots (sequences decoded together); also ``max_concurrency``.
        n_ctx_per_slot: Context tokens per slot (the KV cache holds ``n_parallel`` times this).
        n_threads: CPU threads; None: all cores.
        seed: Sampling seed (replies are greedy at temperature 0 anyway).

    Raises:
        LLMError: when xllamacpp is not installed or the model cannot be loaded.
    """

    def __init__(self, model_path: Path, n_parallel: int = 8, n_ctx_per_slot: int = 2048,
                 n_threads: int | None = None, seed: int = 0) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise LLMError("parallel generation needs xllamacpp: pip install 'promptrec[batch]'") from None
        import os

        self.model_path = Path(model_path)
        self.model_id = f"{self.model_path.name}@{fingerprint(self.model_path)}"
        self.max_concurrency = max(1, int(n_parallel))
        self.n_ctx_per_slot = n_ctx_per_slot
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.n_parallel = self.max_concurrency
        params.n_ctx = n_ctx_per_slot * self.max_concurrency
        params.kv_unified = False
        threads = n_threads or os.cpu_count() or 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.sampling.seed = seed
        params.warmup = False
        params.verbosity = -1  # the server engine logs every slot event otherwise (failures still raise here)
        try:
            self._server = xllamacpp.Server(params)
        except Exception as err:  # noqa: BLE001 - a model llama.cpp cannot load
            raise LLMError(f"xllamacpp could not load {self.model_path.name}: {err}") from err
        self._vocab = None
        self._vocab_lock = threading.Lock()

    def chat(self, request: ChatRequest) -> ChatResponse:
        """One request; safe to call from many threads (the server schedules them on its slots)."""
        body: dict = {
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "stream": False,
        }
        if request.json_schema is not None:
            check_schema(request.json_schema)
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        start = time.perf_counter()
        try:
            out = self._server.handle_chat_completions(body)
        except Exception as err:  # noqa: BLE001 - any failure inside llama.cpp is a failed call
            raise LLMError(f"llama.cpp server failed on the request ({type(err).__name__}: {err})") from err
        seconds = time.perf_counter() - start
        if not isinstance(out, dict) or "choices" not in out:
            detail = out.get("error", out) if isinstance(out, dict) else out
            raise LLMError(f"llama.cpp server refused the request: {str(detail)[:300]}")
        usage = out.get("usage") or {}
        text = out["choices"][0].get("message", {}).get("content") or ""
        return ChatResponse(text=text, prompt_tokens=int(usage.get("prompt_tokens", 0) or 0),
                            completion_tokens=int(usage.get("completion_tokens", 0) or 0), seconds=seconds)

    def count_tokens(self, text: str) -> int:
        """Tokens in the GGUF's own tokenizer (its vocabulary loaded once, without the weights)."""
        with self._vocab_lock:
            if self._vocab is None:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise LLMError("counting tokens needs llama-cpp-python: pip install 'promptrec[local]'") from None
                self._vocab = Llama(model_path=str(self.model_path), vocab_only=True, verbose=False)
            return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def make_batch_backend(settings, n_parallel: int | None = None):
    """The backend for batch jobs: the configured OpenAI-compatible server (``max_concurrency`` requests at
    once), or the configured local GGUF on a :class:`ParallelLlamaBackend` with ``n_parallel`` slots
    (default ``settings.llm.n_parallel``). Same model id as the product's backend, so the job's records
    and cached replies are the product's."""
    from . import make_backend
    from .resolve import resolve_gguf

    llm = settings.llm
    if llm.backend == "openai":
        return make_backend(settings)
    path = resolve_gguf(llm.model, settings.state_dir / "models")
    slots = n_parallel or llm.n_parallel
    return ParallelLlamaBackend(path, n_parallel=slots, n_ctx_per_slot=min(llm.n_ctx, 2048),
                                n_threads=llm.n_threads, seed=settings.seed)


__all__ = ["ParallelLlamaBackend", "bounded_map", "concurrency", "make_batch_backend"]
