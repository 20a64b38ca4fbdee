"""Item knowledge: the model turns each item's text into :class:`ItemFeatures`, in a resumable batch job."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Literal

from filelock import FileLock
from pydantic import BaseModel, Field, create_model

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


FeatureStyle = Literal["closed", "open"]


def store_style(path: Path) -> FeatureStyle:
    """The feature style a store file holds, from its name (``DatasetState.features_for``: ``<model>.jsonl``,
    ``<model>.closed.jsonl``, ``<model>.closed.bare.jsonl``; a model slug has no dots)."""
    return "closed" if "closed" in Path(path).name.split(".")[1:] else "open"


@cache
def vocabulary() -> dict[str, tuple[str, ...]]:
    """The closed feature vocabulary (``wordlists/feature_vocabulary.json``): themes, mood, audience."""
    path = Path(__file__).parent.parent / "wordlists" / "feature_vocabulary.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {key: tuple(data[key]) for key in ("themes", "mood", "audience")}


@cache
def closed_features_model() -> type[BaseModel]:
    """The reply schema of the closed style: every value one word of :func:`vocabulary` (an enum the
    grammar enforces, so a small model cannot invent, loop or copy the prompt)."""
    words = vocabulary()
    theme = Literal[words["themes"]]  # type: ignore[valid-type]
    return create_model(
        "ClosedItemFeatures",
        themes=(list[theme], Field(min_length=1, max_length=3)),
        mood=(Literal[words["mood"]], ...),  # type: ignore[valid-type]
        audience=(Literal[words["audience"]], ...),  # type: ignore[valid-type]
    )


def from_closed(reply: BaseModel) -> ItemFeatures:
    """A closed reply as :class:`ItemFeatures`: repeated themes dropped, no description."""
    themes = list(dict.fromkeys(reply.themes))
    return ItemFeatures(themes=themes, mood=reply.mood, audience=reply.audience, description="")


class FeatureStore(KeyedStore[FeatureRecord]):
    """Item features in an append-only JSONL file (a :class:`~promptrec.records.RecordLog`).

    Each record is flushed and fsynced as soon as it exists, so an interrupted job loses nothing;
    a half-written last line (the process killed mid-write) is dropped and that item is redone.
    ``style`` (from the file name, :func:`store_style`) says which prompt fills it.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, FeatureRecord, key=lambda record: record.item_id)
        self.style: FeatureStyle = store_style(path)

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


TEMPLATES: dict[str, str] = {"open": "item_features", "closed": "item_features_closed"}


class ItemFeatureExtractor:
    """Runs the feature prompt of a style over items that have no record yet.

    The ``open`` style (``item_features``) asks for free phrases and a sentence: capable models write
    useful ones, models under 1B mostly degenerate ones. The ``closed`` style (``item_features_closed``)
    asks the model to pick themes, a mood and an audience from :func:`vocabulary`; the reply is short
    (about 30 tokens) and cannot be degenerate text, only a wrong pick.

    Args:
        client: The LLM client (cached, counted).
        store: Where records go (``None``: the caller stores them).
        max_tokens: Reply budget per item.
        style: Which prompt; default the store's style, else ``open``.
    """

    template_name = "item_features"

    def __init__(self, client: LLMClient, store: FeatureStore | None, max_tokens: int = 320,
                 style: FeatureStyle | None = None) -> None:
        self.client = client
        self.store = store
        self.max_tokens = max_tokens
        self.style: FeatureStyle = style or (store.style if store is not None else "open")
        self.template = load_prompt(TEMPLATES[self.style])
        words = vocabulary()
        self._lists = {"themes": ", ".join(words["themes"]), "moods": ", ".join(words["mood"]),
                       "audiences": ", ".join(words["audience"])}  # the closed prompt's vocabulary, filled in once

    def extract_one(self, item: Item) -> FeatureRecord:
        if self.style == "closed":
            result = self.client.generate(
                self.template, closed_features_model(), {"item": as_data(item.text()), **self._lists},
                max_tokens=min(self.max_tokens, 80),  # 1-3 themes, a mood and an audience: about 30 tokens
            )
            features = from_closed(result.value) if result.value is not None else None
        else:
            result = self.client.generate(
                self.template, ItemFeatures, {"item": as_data(item.text())}, max_tokens=self.max_tokens
            )
            features = result.value
        return FeatureRecord(
            item_id=item.item_id,
            features=features,
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

