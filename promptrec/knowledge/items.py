"""Item knowledge: the model turns each item's text into :class:`ItemFeatures`, in a resumable batch job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, Field

from ..data import Item
from ..llm import LLMClient
from ..prompts import as_data, load_prompt
from ..records import KeyedStore
from ..state import acquire
from ..types import ItemFeatures


class FeatureRecord(BaseModel):
    """One item's features (or why there are none), with the model and prompt that made them."""

    item_id: str
    features: ItemFeatures | None = None
    error: str | None = None
    model_id: str
    template_hash: str


class FeatureStore(KeyedStore[FeatureRecord]):
    """Item features in an append-only JSONL file (a :class:`~promptrec.records.RecordLog`).

    Each record is flushed and fsynced as soon as it exists, so an interrupted job loses nothing;
    a half-written last line (the process killed mid-write) is dropped and that item is redone.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, FeatureRecord, key=lambda record: record.item_id)

    def get(self, item_id: str) -> ItemFeatures | None:
        record = self.record(item_id)
        return record.features if record else None

    def __len__(self) -> int:
        return sum(1 for r in self.records().values() if r.features is not None)


class ExtractionReport(BaseModel):
    """What one run of the feature job did."""

    requested: int = 0
    already_done: int = Field(0, description="Items that already had features (not asked again).")
    retried: int = Field(0, description="Items whose earlier attempt failed, asked again.")
    extracted: int = 0
    failed: int = 0


class ItemFeatureExtractor:
    """Runs the ``item_features`` prompt over items that have no record yet.

    Args:
        client: The LLM client (cached, counted).
        store: Where records go.
        max_tokens: Reply budget per item.
    """

    template_name = "item_features"

    def __init__(self, client: LLMClient, store: FeatureStore, max_tokens: int = 320) -> None:
        self.client = client
        self.store = store
        self.max_tokens = max_tokens
        self.template = load_prompt(self.template_name)

    def extract_one(self, item: Item) -> FeatureRecord:
        result = self.client.generate(
            self.template, ItemFeatures, {"item": as_data(item.text())}, max_tokens=self.max_tokens
        )
        return FeatureRecord(
            item_id=item.item_id,
            features=result.value,
            error=result.error,
            model_id=self.client.model_id,
            template_hash=self.template.hash,
        )

    def run(self, items: Sequence[Item], progress: Callable[[int], None] | None = None) -> ExtractionReport:
        """Extract features for every item without features; safe to interrupt and rerun.

        An item whose earlier attempt failed (model outage, invalid reply) is asked again and
        counted in ``retried``; only items that have features count as ``already_done``.

        Raises:
            StateBusy: when another process is writing the same store.
        """
        report = ExtractionReport(requested=len(items))
        lock = acquire(FileLock(str(self.store.path) + ".lock"), 1, f"writing {self.store.path}")
        try:
            for item in items:
                if self.store.get(item.item_id) is not None:
                    report.already_done += 1
                else:
                    report.retried += item.item_id in self.store
                    record = self.extract_one(item)
                    self.store.append(record)
                    if record.features is None:
                        report.failed += 1
                    else:
                        report.extracted += 1
                if progress:
                    progress(1)
        finally:
            lock.release()
        return report


def feature_text(item: Item, features: ItemFeatures | None) -> str:
    """The text an item is embedded from: its own text, plus the model's features once they exist."""
    return item.text() if features is None else f"{item.text()}. {features.text()}"

