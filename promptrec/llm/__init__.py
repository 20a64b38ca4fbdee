"""Language models behind one interface: in-process llama.cpp, OpenAI-compatible APIs, LangChain."""

from __future__ import annotations

from ..settings import Settings
from .base import LLMBackend, LLMError
from .cache import LLMCache, cache_key
from .client import LLMClient, LLMResult
from .fake import ScriptedLLM
from .resolve import PACKAGED, resolve_gguf
from .types import ChatRequest, ChatResponse, LLMStats

__all__ = [
    "PACKAGED",
    "ChatRequest",
    "ChatResponse",
    "LLMBackend",
    "LLMCache",
    "LLMClient",
    "LLMError",
    "LLMResult",
    "LLMStats",
    "ScriptedLLM",
    "cache_key",
    "make_backend",
    "make_client",
    "resolve_gguf",
]


def make_backend(settings: Settings) -> LLMBackend:
    """The backend the settings name (loads the local model, or prepares the API client)."""
    llm = settings.llm
    if llm.backend == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(
            model=llm.model,
            base_url=llm.base_url,
            api_key=llm.api_key.get_secret_value() if llm.api_key else None,
            send_key_to_custom_url=llm.send_key_to_custom_url,
            timeout_s=llm.timeout_s,
            tiktoken_cache=settings.state_dir / "tiktoken",
            max_concurrency=llm.max_concurrency,
        )
    from .llamacpp import LlamaCppBackend

    path = resolve_gguf(llm.model, settings.state_dir / "models")
    return LlamaCppBackend(path, n_ctx=llm.n_ctx, n_threads=llm.n_threads, seed=settings.seed,
                           prefix_cache_mb=llm.prefix_cache_mb)


def make_client(settings: Settings, backend: LLMBackend | None = None, cache: LLMCache | None = None) -> LLMClient:
    """A cached client over ``backend`` (or the one the settings name), with the configured seed and
    temperature; ``cache`` replaces the persistent reply cache (e.g. ``LLMCache(None)``, in memory)."""
    return LLMClient(
        backend or make_backend(settings),
        cache if cache is not None else LLMCache(settings.llm_cache_path),
        seed=settings.seed,
        temperature=settings.llm.temperature,
    )
