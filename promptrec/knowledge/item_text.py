"""The text vectors the ``cold`` source maps into the collaborative space, as a new item is known.

A new item has nobody's tags yet: only what the catalog says of it (title, genres, other fields) and,
once the model described it, the model's knowledge. So the transfer map is fitted and applied on the
same view for every item: :func:`new_item_view` drops the fields users write (``tags``). Three
representations (``NewItemSettings.text``):

- ``raw``: the view's text (chosen on Protocol D validation: transfer map N@20 among new items 0.310);
- ``joined``: the raw vector beside the vector of the model's features alone (:func:`joined_vectors`;
  0.297 on validation, 0.382 vs 0.366 on test);
- ``stored``: the vector store's own vectors (item text with tags and appended features; 0.287 on
  validation);
- ``model``: the raw vector beside the language model's own vector of the same text (the mean of its last
  hidden states, centred on the catalog: :mod:`promptrec.knowledge.model_vectors`), no generation (0.370 on
  validation with the 1.5B quality model, 0.444 vs 0.366 for ``raw`` on test; not the default: it reads every
  catalog item through the model once).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from ..data import Catalog, Item

log = logging.getLogger(__name__)
USER_MADE_FIELDS = ("tags",)


def new_item_view(item: Item) -> Item:
    """The item as a new item is known: its catalog text without the fields users write (tags)."""
    return Item(item_id=item.item_id, title=item.title,
                fields={k: v for k, v in item.fields.items() if k not in USER_MADE_FIELDS})


def joined_vectors(raw: np.ndarray, knowledge: np.ndarray) -> np.ndarray:
    """The raw-text vector and the knowledge vector side by side (each unit length, so the join is unit
    length and its cosine is the mean of the two cosines): the model's knowledge added to the catalog
    text without diluting it in one embedded string."""
    return np.hstack([raw, knowledge]).astype(np.float32) / np.sqrt(2.0, dtype=np.float32)


class ItemTextVectors:
    """Per item, the vector of :func:`new_item_view`'s text, or (``features`` given) that vector joined
    with the vector of the model's features (an item without features: its raw vector twice).

    Offers what :func:`promptrec.knowledge.new_items.fit_new_items` reads of a vector store:
    :meth:`vectors` and :meth:`stored_hashes` (the hash of the texts each vector is made from).

    Args:
        catalog: The items.
        cache: A :class:`~promptrec.knowledge.vector_cache.VectorCache` (embeds each text once, kept on disk).
        features: The model's features (anything with ``get(item_id)``); None: raw vectors only.
        model_cache: A ``VectorCache`` over :class:`~promptrec.knowledge.model_vectors.ModelVectors`: the raw vector
            beside the model's own vector of the same text, centred on the whole catalog (not with ``features``).
    """

    def __init__(self, catalog: Catalog, cache, features=None, model_cache=None) -> None:
        if features is not None and model_cache is not None:
            raise ValueError("ItemTextVectors joins the raw vector with the features or with the model's vectors, not both")
        self.catalog = catalog
        self.cache = cache
        self.features = features
        self.model_cache = model_cache
        self._texts: dict[str, tuple[str, str | None]] = {}
        self._model: dict[str, np.ndarray] | None = None

    def _texts_of(self, item_id: str) -> tuple[str, str | None] | None:
        if item_id not in self._texts:
            item = self.catalog.get(item_id)
            if item is None:
                return None
            raw = new_item_view(item).text()
            found = self.features.get(item_id) if self.features is not None else None
            self._texts[item_id] = (raw, found.text() if found is not None else None)
        return self._texts[item_id]

    def vectors(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        known = [(i, t) for i in item_ids if (t := self._texts_of(i)) is not None]
        if not known:
            return {}
        raw = self.cache.embed([t[0] for _, t in known])
        if self.model_cache is not None:
            model = self._catalog_model_vectors()
            joined = joined_vectors(raw, np.stack([model[i] for i, _ in known]).astype(np.float32))
            return {i: joined[n] for n, (i, _) in enumerate(known)}
        if self.features is None:
            return {i: raw[n] for n, (i, _) in enumerate(known)}
        knowledge = self.cache.embed([t[1] if t[1] is not None else t[0] for _, t in known])
        joined = joined_vectors(raw, knowledge)
        return {i: joined[n] for n, (i, _) in enumerate(known)}

    def _catalog_model_vectors(self) -> dict[str, np.ndarray]:
        """Every catalog item's model vector, centred on the whole catalog (read once, each block saved)."""
        if self._model is None:
            from .model_vectors import model_vector_map  # model_vectors imports this module

            log.info("the cold source reads %d catalog texts through %s (once; cached under the state dir)",
                     len(self.catalog), self.model_cache.embedder.name)
            self._model = model_vector_map(list(self.catalog), self.model_cache)
        return self._model

    def stored_hashes(self) -> dict[str, str]:
        out = {}
        tag = f"\0model:{self.model_cache.embedder.name}" if self.model_cache is not None else ""
        for item in self.catalog:
            raw, knowledge = self._texts_of(item.item_id)
            text = (raw if self.features is None else f"{raw}\0{knowledge or raw}") + tag
            out[item.item_id] = hashlib.sha1(text.encode()).hexdigest()[:16]
        return out


__all__ = ["USER_MADE_FIELDS", "ItemTextVectors", "joined_vectors", "new_item_view"]
