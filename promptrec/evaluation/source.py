"""Which dataset an evaluation runs on, loaded as the product loads it, named by a content hash,
and where that evaluation keeps its state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..data import Dataset, load_dataset
from ..settings import Settings
from ..state import content_digest


def dataset_digest(dataset: Dataset) -> str:
    """SHA-256 of the loaded content (see :func:`promptrec.state.content_digest`)."""
    return content_digest(dataset)


@dataclass
class EvalSource:
    """A dataset under evaluation and its content hash."""

    dataset: Dataset
    sha256: str

    @property
    def key(self) -> str:
        """A folder name for this content: the dataset name and the start of its hash."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", self.dataset.name).strip("._") or "dataset"
        return f"{name}-{self.sha256[:12]}"

    def meta(self) -> dict:
        return {"name": self.dataset.name, "sha256": self.sha256, "items": len(self.dataset.catalog),
                "interactions": len(self.dataset.interactions)}


def load_source(settings: Settings) -> EvalSource:
    """The dataset ``settings.dataset`` names (``ml-latest-small`` in ``settings.data_dir`` by default,
    or a folder of items + interactions), loaded by the product's loaders."""
    dataset = load_dataset(settings.dataset, settings.data_dir, settings.download)
    return EvalSource(dataset, dataset_digest(dataset))


def eval_state_dir(settings: Settings, source: EvalSource) -> Path:
    """Where an evaluation of ``source`` keeps its split store, fitted models and records."""
    return Path(settings.state_dir) / "eval" / source.key


__all__ = ["EvalSource", "dataset_digest", "eval_state_dir", "load_source"]
