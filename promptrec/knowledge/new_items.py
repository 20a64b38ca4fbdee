"""New items in the product: catalog items the collaborative scorers cannot score (no interactions, or
fewer than ``FusionSettings.min_item_support``) get a score from their text through a
:class:`~promptrec.knowledge.transfer.TransferMap` fitted on the items that have interactions.

The retriever pools and fuses this ``cold`` source like any other; its weight is a fusion weight.
The fitted map is kept under the dataset's state folder as ``transfer-<fingerprint>.npz`` + ``.json``
(no pickle), named by the interactions, the item texts' hashes and the map's configuration.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from ..collab.base import interaction_matrix
from ..data import Catalog, InteractionLog
from .ridge import MapFileError
from .transfer import TransferConfig, TransferMap

log = logging.getLogger(__name__)
NEW = "cold"


class NewItemScorer:
    """Scores the catalog's new items for a history: ``user vector . mapped text factors``.

    Attributes:
        items: The new item ids (scored by this source), in a fixed order.
        index: Item id -> position in :attr:`items`.
        interactions: Item id -> how many interactions it has (0 for a brand-new item).
        neutral_missing: The retriever fills a new item's missing collaborative scores with the pool's
            mean (neutral) instead of its minimum (see :func:`promptrec.retrieval.retriever.neutral_for_new`).
    """

    name = NEW

    def __init__(self, transfer: TransferMap, items: Sequence[str], vectors: np.ndarray,
                 interactions: Mapping[str, int], neutral_missing: bool = True) -> None:
        self.transfer = transfer
        self.neutral_missing = neutral_missing  # the retriever counts the collaborative sources as neutral for them
        self.items = list(items)
        self.index = {item: n for n, item in enumerate(self.items)}
        # float32: with the EASE space a new item's coordinates are one weight per warm item
        self.factors = transfer.map(vectors).astype(np.float32) if len(self.items) else np.zeros((0, 1), np.float32)
        self.interactions = {item: int(interactions.get(item, 0)) for item in self.items}

    def scores(self, history: Sequence[str]) -> np.ndarray:
        """A score per new item (same order as :attr:`items`); zeros when no history item is known."""
        if not self.items:
            return np.zeros(0)
        return self.factors @ self.transfer.user_vector(history)

    def pool_scores(self, history: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """Scores on one scale for any items: a new item's from its text, an item with interactions
        its own score in the collaborative space (PureSVD or EASE), NaN for an item the map does not know."""
        user = self.transfer.user_vector(history)
        new = self.factors @ user if self.items else np.zeros(0)
        warm = self.transfer.warm_scores(user)
        return np.array([new[self.index[i]] if i in self.index else
                         warm[self.transfer.index[i]] if i in self.transfer.index else np.nan for i in items])


def _fingerprint(log_: InteractionLog, warm: Sequence[str], text_hashes: Mapping[str, str], config: TransferConfig) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(log_.frame, index=False).to_numpy().tobytes())
    digest.update("\n".join(f"{i}\t{text_hashes.get(i, '')}" for i in warm).encode())
    digest.update(config.model_dump_json().encode())
    return digest.hexdigest()[:16]


def fit_new_items(log_: InteractionLog, catalog: Catalog, warm: Sequence[str], store, config: TransferConfig,
                  folder: Path, neutral_missing: bool = True) -> NewItemScorer | None:
    """The new-item source over ``catalog``: a map fitted from the ``warm`` items' stored text vectors
    (the collaborative index, in its order) to their collaborative space, loaded from ``folder`` when
    the same fit is there. None when every catalog item is warm or no warm item has a vector."""
    warm_set = set(warm)
    new = [item.item_id for item in catalog if item.item_id not in warm_set]
    if not new or not warm:
        return None
    vectors = store.vectors([*warm, *new])
    warm_known = [i for i in warm if i in vectors]
    new_known = [i for i in new if i in vectors]
    if len(warm_known) < 2 or not new_known:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(log_, warm_known, store.stored_hashes(), config)
    path = folder / f"transfer-{fingerprint}"
    with FileLock(str(folder / "transfer.lock")):
        transfer = None
        if path.with_suffix(".json").exists():
            try:
                transfer = TransferMap.load(path)
                if transfer.items != warm_known:
                    raise MapFileError("made for other items")
            except (MapFileError, KeyError, TypeError, ValueError) as err:
                log.warning("%s is unusable (%s); refitting", path, err)
                transfer = None
        if transfer is None:
            transfer = _fit(log_, warm_known, vectors, config, fingerprint)
            transfer.save(path)
            for old in folder.glob("transfer-*.*"):
                if old.stem != path.name:
                    old.unlink(missing_ok=True)
    counts = log_.item_counts
    return NewItemScorer(transfer, new_known, np.vstack([vectors[i] for i in new_known]),
                         {i: int(counts.get(i, 0)) for i in new_known}, neutral_missing)


def _fit(log_: InteractionLog, warm: list[str], vectors: Mapping[str, np.ndarray], config: TransferConfig,
         fingerprint: str) -> TransferMap:
    index = {item: n for n, item in enumerate(warm)}
    _, sequences, _ = log_.sequences()
    histories = [np.array([index[i] for i in seq if i in index], dtype=np.int64) for seq in sequences]
    matrix = interaction_matrix(histories, len(warm))
    meta = {"fingerprint": fingerprint, "users": matrix.shape[0], "interactions": int(matrix.nnz)}
    return TransferMap.fit(matrix, np.vstack([vectors[i] for i in warm]), warm, config, meta)


__all__ = ["NEW", "NewItemScorer", "fit_new_items"]
