"""The knowledge model's own vectors of item texts: the mean of a GGUF model's last hidden states over
the text (llama.cpp in embedding mode), with no token generated.

A language model that knows a title (its franchise, its director, its era) carries that in its hidden
states when it reads the title; LLM-ESR and similar work use an LLM's embedding of the item text as the
item's semantic view for long-tail and new items. Reading costs one forward pass over ~20 tokens per
item (batched), far less than generating features.

:class:`ModelVectors` has the :class:`~promptrec.retrieval.embeddings.Embedder` shape (``name``,
``dimension``, ``embed`` -> unit rows), so the caches that key vectors by the embedder's name keep them
apart from the MiniLM vectors. A decoder's hidden states share one large common direction, so cosine
between the raw vectors says little: :func:`centred` removes the mean of the items a model is fitted on
(and re-normalises) before any similarity is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .item_text import new_item_view
from .vector_cache import VectorCache
from ..llm.resolve import PACKAGED, fingerprint, resolve_gguf

__all__ = ["CachedModelVectors", "ModelVectors", "cached_model_vector_map", "centred", "model_vector_cache", "model_vector_map",
           "read_in_blocks", "reader_name"]


class ModelVectors:
    """Mean-pooled last hidden states of a GGUF model (llama-cpp-python, ``embedding=True``).

    Args:
        spec: ``small`` | ``medium`` | ``quality`` | a ``.gguf`` path (as the LLM settings name models).
        models_dir: Where split models are assembled (``STATE_DIR/models``).
        threads: CPU threads (None: llama.cpp's choice; pass ``settings.llm.n_threads``).
        batch_size: Texts decoded together.
        max_chars: Characters of each text read (item texts are short; a runaway text is cut).
    """

    def __init__(self, spec: str, models_dir: Path, threads: int | None = None, batch_size: int = 32,
                 max_chars: int = 600) -> None:
        path = _model_file(spec, Path(models_dir))
        self.model_id = f"{path.name}@{fingerprint(path)}"
        self.name = f"llm-mean:{self.model_id}"
        self.batch_size = batch_size
        self.max_chars = max_chars
        try:
            import llama_cpp
            from llama_cpp._utils import suppress_stdout_stderr
        except ImportError as err:  # pragma: no cover - llama-cpp-python is a dependency
            raise ModelError(f"model vectors need llama-cpp-python ({err})") from None
        try:
            # quiet: llama.cpp notes on stderr that mean pooling overrides the chat model's default (none)
            with suppress_stdout_stderr(disable=False):
                self._llama = llama_cpp.Llama(model_path=str(path), embedding=True, verbose=False,
                                              pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                                              n_ctx=4096, n_batch=4096, n_ubatch=4096, n_threads=threads)
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"could not load {path} to read item vectors: {err}") from None
        self.dimension = int(self._llama.n_embd())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts``: float32, shape (len(texts), dimension)."""
        rows = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [(t or " ")[: self.max_chars] for t in texts[start : start + self.batch_size]]
            rows.append(np.asarray(self._llama.embed(chunk, normalize=False), dtype=np.float64))
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _unit(np.vstack(rows)).astype(np.float32)


def centred(vectors: np.ndarray, fit_rows: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
    """``vectors`` minus the mean of ``fit_rows`` (default: every row), re-normalised to unit rows.

    Take the mean over the items a model is fitted on (the warm items), never over items it will score."""
    x = np.asarray(vectors, dtype=np.float64)
    mean = (x if fit_rows is None else x[np.asarray(fit_rows)]).mean(axis=0) if len(x) else 0.0
    return _unit(x - mean).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def model_vector_map(items: Sequence, cache, progress=None, block: int = 256) -> dict[str, np.ndarray]:
    """Item id -> the model's own vector of the item's title + genres (:func:`new_item_view`: the same text for an
    old and a new item), centred on ``items``. ``cache`` is a :class:`~promptrec.knowledge.vector_cache.VectorCache` over a
    :class:`ModelVectors`; texts are read in blocks, each saved as it finishes (``progress(n)`` after each)."""
    texts = [new_item_view(it).text() for it in items]
    vectors = centred(read_in_blocks(cache, texts, progress, block)) if texts else np.zeros((0, 1))
    return {it.item_id: vectors[n].astype(np.float64) for n, it in enumerate(items)}


def read_in_blocks(cache, texts: Sequence[str], progress=None, block: int = 256) -> np.ndarray:
    """``cache.embed(texts)``, read ``block`` texts at a time so each block is saved as it finishes (an interrupted
    read keeps what it read; ``progress(n)`` after each block). Rows aligned with ``texts``, not centred."""
    for start in range(0, len(texts), block):
        cache.embed(texts[start:start + block])
        if progress:
            progress(len(texts[start:start + block]))
    return cache.embed(texts)


class CachedModelVectors:
    """Stands in for a :class:`ModelVectors` whose vectors a :class:`~promptrec.knowledge.vector_cache.VectorCache` under
    ``folder`` already holds (``name``: the reader's name, ``llm-mean:<model id>``): nothing is loaded, so a
    product that ranks with model vectors starts without the model; a text never read raises ModelError.

    Raises ModelError when the folder holds no vectors of that name."""

    def __init__(self, name: str, folder: Path) -> None:

        self.name = name
        path, _ = VectorCache.files(Path(folder), name)
        try:
            rows = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ModelError(f"no model vectors {name} under {folder} ({err.__class__.__name__}); read them again "
                             "(promptrec fit-fusion --model-vectors MODEL)") from None
        if rows.ndim != 2:
            raise ModelError(f"{path} is not a matrix of model vectors; read them again "
                             "(promptrec fit-fusion --model-vectors MODEL)")
        self.dimension = int(rows.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelError(f"{len(texts)} item texts have no cached vectors of {self.name}; read them with the model "
                         "(promptrec fit-fusion --model-vectors MODEL)")


def cached_model_vector_map(items: Sequence, cache) -> dict[str, np.ndarray]:
    """:func:`model_vector_map` over the items whose title + genres ``cache`` already holds, centred on those (an
    item added to the catalog since has none: its model signals are missing, never computed here)."""
    texts = [(it, new_item_view(it).text()) for it in items]
    known = [(it, t) for it, t in texts if cache.has(t)]
    if not known:
        return {}
    vectors = centred(cache.embed([t for _, t in known]))
    return {it.item_id: vectors[n].astype(np.float64) for n, (it, _) in enumerate(known)}


def _model_file(spec: str, models_dir: Path) -> Path:
    """``resolve_gguf``, with a missing file named as what it is here (a model to read item vectors with, not the
    configured chat model, which ``resolve_gguf``'s own message points at)."""
    if spec not in PACKAGED and not spec.startswith("hf:") and not Path(spec).expanduser().exists():
        raise ModelError(f"no model {spec!r} to read item vectors with: name 'small', 'medium' or 'quality' (the "
                         "packaged models; `promptrec models` lists what is installed) or the path of a .gguf file")
    return resolve_gguf(spec, Path(models_dir))


def reader_name(spec: str, models_dir: Path) -> str:
    """The name a :class:`ModelVectors` of ``spec`` has (``llm-mean:<file>@<fingerprint>``), without loading it."""
    path = _model_file(spec, models_dir)
    return f"llm-mean:{path.name}@{fingerprint(path)}"


def model_vector_cache(spec: str, models_dir: Path, folder: Path, items: Sequence, threads: int | None = None):
    """A :class:`~promptrec.knowledge.vector_cache.VectorCache` of ``spec``'s vectors under ``folder`` that loads the model
    only when one of ``items``' title + genres texts is not cached yet (a product restarted on the same catalog
    reads them from disk)."""

    try:
        cached = VectorCache(CachedModelVectors(reader_name(spec, models_dir), folder), folder)
        if all(cached.has(new_item_view(it).text()) for it in items):
            return cached
    except ModelError:
        pass  # nothing cached yet: read them
    return VectorCache(ModelVectors(spec, models_dir, threads=threads), folder)
