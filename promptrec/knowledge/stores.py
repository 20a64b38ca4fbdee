"""Which feature store the product reads: the configured model's own (``DatasetState.features_for``).

Before per-model stores existed, every model's features went to one ``features.jsonl``. The first
time a dataset's state is opened that file is migrated once: each record goes to the store of the model
that made it (its ``model_id``; a good record there is never replaced), features that fail the
degenerate check are moved as failed records with the reason, and the old file is renamed
``features.jsonl.migrated`` (kept, never read again).
"""

from __future__ import annotations

from filelock import FileLock

from ..prompts import as_data, load_prompt
from ..records import RecordLog
from ..state import DatasetState, acquire
from .degenerate import DEGENERATE, FeatureCheck, prompt_instructions
from .items import FeatureRecord, FeatureStore



def migrate_legacy_features(state: DatasetState, catalog=None) -> int:
    """Move the records of the old shared ``features.jsonl`` into per-model stores; returns how many moved
    (0 when there is no old file). ``catalog`` (optional) gives the item text for the copy check."""
    legacy = state.features
    if not legacy.exists():
        return 0
    lock = acquire(FileLock(str(legacy) + ".lock"), 60, f"migrating {legacy}")
    try:
        if not legacy.exists():  # another process migrated it while this one waited
            return 0
        check = FeatureCheck(prompt_instructions(load_prompt("item_features")))
        stores: dict[str, FeatureStore] = {}
        moved = 0
        for record in _every_record(legacy):
            record = _checked(record, check, catalog)
            store = stores.setdefault(record.model_id, FeatureStore(state.features_for(record.model_id, "open")))
            if store.get(record.item_id) is None and (record.features is not None or record.item_id not in store):
                store.append(record)
                moved += 1
        legacy.rename(legacy.with_name(legacy.name + ".migrated"))
        return moved
    finally:
        lock.release()


def _every_record(path) -> list[FeatureRecord]:
    """Every record of the old file, the last per (model, item): one item may have records of several models."""
    log = RecordLog(path, FeatureRecord, key=lambda r: (r.model_id, r.item_id))
    return list(log.load().values())


def _checked(record: FeatureRecord, check: FeatureCheck, catalog) -> FeatureRecord:
    if record.features is None:
        return record
    item = catalog.get(record.item_id) if catalog is not None else None
    reason = check(record.features, as_data(item.text()) if item is not None else "", item.title if item else "")
    if reason is None:
        return record
    return record.model_copy(update={"features": None, "error": DEGENERATE + reason})


def product_feature_store(state: DatasetState, model_id: str | None, catalog=None,
                          style: str = "closed") -> FeatureStore:
    """The feature store of ``model_id`` and ``style`` for this dataset, after the one-time migration of the
    old file. With no model id (no model configured or installed) the old location, which then holds nothing."""
    migrate_legacy_features(state, catalog)
    return FeatureStore(state.features_for(model_id, style) if model_id else state.features)


__all__ = ["migrate_legacy_features", "product_feature_store"]
