"""The model id a configuration names, without loading the model (for stores keyed by model)."""

from __future__ import annotations

from .base import LLMError
from .openai_backend import is_openai_url
from .resolve import fingerprint, resolve_gguf


def configured_model_id(settings) -> str | None:
    """The ``model_id`` the configured backend will report (see ``LlamaCppBackend`` / ``OpenAIBackend``),
    or None when the local model is not installed."""
    llm = settings.llm
    if llm.backend == "openai":
        return f"openai:{llm.model}" if is_openai_url(llm.base_url) else f"openai-compatible:{llm.model}@{llm.base_url}"
    try:
        path = resolve_gguf(llm.model, settings.state_dir / "models")
    except LLMError:
        return None
    return f"{path.name}@{fingerprint(path)}"


__all__ = ["configured_model_id"]
