"""The model id a configuration names, without loading the model (for stores keyed by model)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .base import LLMError
from .openai_backend import is_openai_url
from .resolve import PACKAGED, fingerprint, resolve_gguf

_HEAD = 1 << 22  # the bytes fingerprint() reads at each end


def configured_model_id(settings) -> str | None:
    """The ``model_id`` the configured backend will report (see ``LlamaCppBackend`` / ``OpenAIBackend``),
    or None when the local model is not installed. A packaged model shipped in parts is not assembled
    for this: its fingerprint is read from the parts."""
    llm = settings.llm
    if llm.backend == "openai":
        return f"openai:{llm.model}" if is_openai_url(llm.base_url) else f"openai-compatible:{llm.model}@{llm.base_url}"
    if llm.model in PACKAGED:
        model = PACKAGED[llm.model]
        parts = model.part_paths()
        if parts is None:
            return None
        if not (len(parts) == 1 and parts[0].suffix == ".gguf"):
            return f"{model.file_name}@{parts_fingerprint(parts)}"
    try:
        path = resolve_gguf(llm.model, settings.state_dir / "models")
    except LLMError:
        return None
    return f"{path.name}@{fingerprint(path)}"


def parts_fingerprint(parts: list[Path]) -> str:
    """:func:`~promptrec.llm.resolve.fingerprint` of the file the ``parts`` concatenate into, without writing it."""
    sizes = [p.stat().st_size for p in parts]
    total = sum(sizes)
    digest = hashlib.sha256(str(total).encode())
    digest.update(_read(parts, sizes, 0, min(_HEAD, total)))
    start = max(0, total - _HEAD)
    digest.update(_read(parts, sizes, start, total - start))
    return digest.hexdigest()[:16]


def _read(parts: list[Path], sizes: list[int], offset: int, length: int) -> bytes:
    out = bytearray()
    base = 0
    for part, size in zip(parts, sizes):
        if length <= 0:
            break
        if offset < base + size:
            with part.open("rb") as handle:
                handle.seek(offset - base)
                chunk = handle.read(min(length, base + size - offset))
            out += chunk
            offset += len(chunk)
            length -= len(chunk)
        base += size
    return bytes(out)


__all__ = ["configured_model_id", "parts_fingerprint"]
