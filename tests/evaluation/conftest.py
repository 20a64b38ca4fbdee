"""Fixtures shared by the product-evaluation tests: the tiny dataset's Protocol A split and a bench
(the split's catalog in a Chroma store with hash embeddings, EASE + embedding fusion)."""

from __future__ import annotations

import pytest

from promptrec.evaluation.product import Bench, index_split_items, ratings_by_user, split_catalog
from promptrec.evaluation.splits import protocol_a_split
from promptrec.retrieval import ItemVectorStore
from promptrec.retrieval.store import make_client
from promptrec.settings import FusionSettings


@pytest.fixture
def split(tiny):
    return protocol_a_split(tiny.interactions.frame, k=2)


@pytest.fixture
def make_bench(split, tiny, hash_embedder, settings, tmp_path):
    """``make_bench(**settings_updates)``: the bench, with the given settings sections replaced."""
    def make(**updates) -> Bench:
        catalog = split_catalog(split, tiny)
        store = ItemVectorStore(make_client(tmp_path / "c"), hash_embedder, "items")
        index_split_items(store, catalog)
        fusion = FusionSettings(weights={"embedding": 0.3, "ease": 1.0}, params={"ease": {"lambda_": 10.0}},
                                candidate_depth=30, min_item_support=1)
        return Bench(settings.model_copy(update={"fusion": fusion, **updates}), catalog, store, hash_embedder, None,
                     None, ratings_by_user(tiny.interactions))
    return make
