"""Distilled student: a ridge map from an item's raw-text vector to its feature-text vector.

Trained on the items the language model has described (raw text -> text + model features, both
embedded by the same embedder), it gives a new item a feature-text-like vector without a model
call. The output is renormalised to unit length, like every embedder vector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..retrieval.embeddings import normalize
from .ridge import load_map, ridge, save_map

FORMAT = "promptrec-distilled-student/1"


class StudentConfig(BaseModel):
    """Attributes:
        lambda_: Ridge penalty.
        residual: Predict the difference feature - raw (and add the raw vector back), so a strong
            penalty falls back to the raw vector instead of the mean item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lambda_: float = Field(1.0, gt=0)
    residual: bool = True


class DistilledStudent:
    """Raw-text vector -> predicted feature-text vector. Build it with :meth:`fit` or :meth:`load`."""

    def __init__(self, config: StudentConfig, weights: np.ndarray, x_mean: np.ndarray, y_mean: np.ndarray,
                 meta: dict | None = None) -> None:
        self.config = config
        self.weights = weights
        self.x_mean = x_mean
        self.y_mean = y_mean
        self.meta = dict(meta or {})

    @classmethod
    def fit(cls, raw: np.ndarray, featured: np.ndarray, config: StudentConfig | None = None,
            meta: dict | None = None) -> DistilledStudent:
        """Fit on pairs: ``raw[i]`` and ``featured[i]`` are one item's two vectors."""
        config = config or StudentConfig()
        raw = np.asarray(raw, dtype=np.float64)
        target = np.asarray(featured, dtype=np.float64) - (raw if config.residual else 0.0)
        weights, x_mean, y_mean = ridge(raw, target, config.lambda_)
        return cls(config, weights, x_mean, y_mean, {"trained_on": len(raw), **(meta or {})})

    def predict(self, raw: np.ndarray) -> np.ndarray:
        """Unit-length predicted feature-text vectors, shape like ``raw``."""
        raw = np.asarray(raw, dtype=np.float64)
        out = (raw - self.x_mean) @ self.weights + self.y_mean
        return normalize(out + raw if self.config.residual else out)

    def save(self, path: Path) -> Path:
        """``path.npz`` + ``path.json``; no pickle."""
        return save_map(path, FORMAT, {"config": self.config.model_dump(), "meta": self.meta},
                        {"weights": self.weights, "x_mean": self.x_mean, "y_mean": self.y_mean})

    @classmethod
    def load(cls, path: Path) -> DistilledStudent:
        record, arrays = load_map(path, FORMAT)
        return cls(StudentConfig(**record["config"]), arrays["weights"], arrays["x_mean"], arrays["y_mean"],
                   record.get("meta"))


__all__ = ["DistilledStudent", "StudentConfig"]
