"""In-process llama.cpp through llama-cpp-python, with schema-constrained JSON output.

Two things make it cheaper per call than llama-cpp-python's defaults, without changing a reply:

- **threads**: generation and prompt evaluation use every core this process may run on
  (llama-cpp-python uses half the cores for generation unless told);
- **lazy grammar** (:class:`GreedyGrammarSampler`): a schema-constrained greedy reply is decoded the
  way llama.cpp's own ``common_sampler`` does it: take the most likely token, and only when the grammar
  refuses it, filter the whole vocabulary through the grammar. llama-cpp-python filters the whole
  vocabulary (49k-152k tokens) at every step. The chosen token is the same either way (the most
  likely token the grammar allows), so replies, cache keys and the fail-closed guarantee are unchanged;
- **prefix states** (``prefix_cache_mb``): llama.cpp reuses the prompt prefix it evaluated last, so a
  call that follows another with a different prompt (a chat turn's request reading, then its reasons)
  evaluates its whole prompt again. The backend keeps the model state after each call in a small
  in-memory cache (llama-cpp-python's ``LlamaRAMCache``) and restores the one sharing the longest
  prefix with the next prompt, so the reasons of a follow-up turn start from the evaluated system
  prompt. A kept state holds the KV cells of the prompt and reply and the last logits row only
  (llama-cpp-python would copy its whole logits buffer, 100-300 MB a call), so saving one costs
  milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path

import numpy as np

from .base import LLMError
from .deadline import DeadlineExceeded
from .resolve import fingerprint
from .schema import check_schema
from .types import ChatRequest, ChatResponse


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; all cores where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class GreedyGrammarSampler:
    """Greedy decoding under a llama.cpp grammar, checking the grammar lazily.

    Equivalent to llama-cpp-python's chain (no-op penalties, grammar, greedy) at temperature 0: the
    reply is the most likely token the grammar allows at every step.
    """

    def __init__(self, vocab, grammar, n_vocab: int) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.n_vocab = n_vocab
        self.grammar = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        if not self.grammar:
            raise LLMError("llama.cpp could not compile the reply grammar")
        self._one = (llama_cpp.llama_token_data * 1)()
        self._all = None
        self.full_checks = 0  # steps where the most likely token was refused and the vocabulary was filtered

    def _apply(self, data, size: int) -> None:
        lib = self._lib
        array = lib.llama_token_data_array(data=ctypes.cast(data, lib.llama_token_data_p), size=size,
                                           selected=-1, sorted=False)
        lib.llama_sampler_apply(self.grammar, ctypes.byref(array))

    def sample(self, ctx, idx: int = -1) -> int:
        lib = self._lib
        pointer = lib.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        token = int(np.argmax(logits))
        self._one[0].id, self._one[0].logit, self._one[0].p = token, float(logits[token]), 0.0
        self._apply(self._one, 1)
        if not np.isfinite(self._one[0].logit):  # refused: the best token the grammar allows
            self.full_checks += 1
            if self._all is None:
                self._all = (lib.llama_token_data * self.n_vocab)()
                self._view = np.frombuffer(self._all, dtype=np.dtype(
                    [("id", np.int32), ("logit", np.float32), ("p", np.float32)]))
                self._view["id"] = np.arange(self.n_vocab, dtype=np.int32)
            self._view["logit"] = logits
            self._view["p"] = 0.0
            self._apply(self._all, self.n_vocab)
            allowed = self._view["logit"]
            best = int(np.argmax(allowed))
            if not np.isfinite(allowed[best]):
                raise LLMError("the reply grammar allows no next token")
            token = int(self._view["id"][best])
        lib.llama_sampler_accept(self.grammar, token)
        return token

    def accept(self, token: int) -> None:
        self._lib.llama_sampler_accept(self.grammar, token)

    def reset(self) -> None:
        self._lib.llama_sampler_reset(self.grammar)

    def close(self) -> None:
        if self.grammar:
            self._lib.llama_sampler_free(self.grammar)
            self.grammar = None

    def __del__(self) -> None:
        self.close()


def _llama_class():
    from llama_cpp import Llama

    class CountingLlama(Llama):
        """Counts sampled tokens, and decodes greedy constrained replies with :class:`GreedyGrammarSampler`."""

        sampled = 0
        evaluated = 0  # prompt and reply tokens llama.cpp evaluated (a reused prefix is not evaluated)
        lazy_grammar = True

        def eval(self, tokens):
            self.evaluated += len(tokens)
            return super().eval(tokens)

        def save_state(self):
            """The model state for the prefix cache, with the last logits row only (see the module doc):
            a restored state re-evaluates at least its last prompt token, so older rows are never read."""
            import llama_cpp as lib
            from llama_cpp.llama import LlamaState

            size = lib.llama_state_get_size(self._ctx.ctx)
            buffer = (ctypes.c_uint8 * int(size))()
            n_bytes = lib.llama_state_get_data(self._ctx.ctx, buffer, size)
            if int(n_bytes) > int(size):
                raise RuntimeError("failed to copy the llama state")
            return LlamaState(scores=self._scores[-1:].copy(), input_ids=self.input_ids.copy(), n_tokens=self.n_tokens,
                              llama_state=ctypes.string_at(buffer, int(n_bytes)), llama_state_size=int(n_bytes), seed=self._seed)

        def sample(self, *args, **kwargs):
            self.sampled += 1
            return super().sample(*args, **kwargs)

        def _init_sampler(self, *, temp=0.80, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0,
                          logits_processor=None, grammar=None, **kwargs):
            if (self.lazy_grammar and grammar is not None and temp == 0.0 and logits_processor is None
                    and repeat_penalty == 1.0 and frequency_penalty == 0.0 and presence_penalty == 0.0):
                return GreedyGrammarSampler(self._model.vocab, grammar, self._n_vocab)
            return super()._init_sampler(temp=temp, repeat_penalty=repeat_penalty,
                                         frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
                                         logits_processor=logits_processor, grammar=grammar, **kwargs)

    return CountingLlama


class LlamaCppBackend:
    """A local GGUF model run in this process.

    One request runs at a time (a lock). A request with a ``timeout_s`` waits for the lock at most
    that long and is generated token by token, stopping as soon as the time is up. ``seconds``
    measures the model's own work only, not the wait for the lock.

    Args:
        model_path: The GGUF file.
        n_ctx: Context window in tokens.
        n_threads: CPU threads for generation and prompt evaluation; None: every usable core.
        seed: Sampling seed (replies are greedy at temperature 0 anyway).
        lazy_grammar: Check the reply grammar lazily (same replies, less work; see the module doc).
        prefix_cache_mb: Memory for kept model states (prefix reuse across calls; 0: none).
    """

    def __init__(self, model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0,
                 lazy_grammar: bool = True, prefix_cache_mb: int = 256) -> None:
        try:
            llama_class = _llama_class()
        except ImportError:
            raise LLMError("the local backend needs llama-cpp-python: pip install 'promptrec[local]'") from None
        self.model_path = Path(model_path)
        self.model_id = f"{self.model_path.name}@{fingerprint(self.model_path)}"
        self.n_threads = n_threads or usable_cores()
        self._lock = threading.Lock()
        self._llm = llama_class(model_path=str(self.model_path), n_ctx=n_ctx, n_threads=self.n_threads,
                                n_threads_batch=self.n_threads, seed=seed, verbose=False)
        self._llm.lazy_grammar = lazy_grammar
        if prefix_cache_mb > 0:
            from llama_cpp import LlamaRAMCache

            self._llm.set_cache(LlamaRAMCache(capacity_bytes=prefix_cache_mb << 20))

    @property
    def n_ctx(self) -> int:
        return self._llm.n_ctx()

    def reset(self) -> None:
        """Forget the evaluated prompt and the kept states, so the next call reuses no prefix (benchmarks)."""
        with self._lock:
            self._llm.reset()
            if self._llm.cache is not None:
                self._llm.cache.cache_state.clear()

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
        self._llm.sampled = 0
        chunks = self._llm.create_chat_completion(**kwargs, stream=True)
        parts: list[str] = []
        finish = None
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                parts.append(choice["delta"].get("content") or "")
                finish = choice.get("finish_reason") or finish
                if time.monotonic() >= stop_at:
                    raise DeadlineExceeded(
                        f"the request's deadline passed during generation; stopped after {self._llm.sampled} tokens"
                    )
        finally:
            chunks.close()  # ends llama.cpp's generation loop
        # the end-of-text token is sampled but not counted; the last token is never evaluated
        sampled = self._llm.sampled
        completion = sampled - 1 if finish == "stop" else sampled
        prompt = self._llm.n_tokens - completion + (0 if finish == "stop" else 1)
        return "".join(parts), max(0, prompt), max(0, completion)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
