"""Derived state lives under the state dir, keyed by the dataset's identity, never in a data folder."""

import hashlib

import pandas as pd
import pytest

from promptrec import Recommender
from promptrec.errors import ConfigError
from promptrec.settings import Settings
from promptrec.state import DatasetState, dataset_identity
from promptrec.testing import HashEmbedder, tiny_dataset, write_dataset_folder


def snapshot(folder):
    """Every file under ``folder`` with a hash of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def rec_for(state_dir, dataset, data_dir=None):
    settings = Settings(state_dir=state_dir, dataset=str(dataset), data_dir=data_dir or state_dir, download=False)
    settings.fusion.min_item_support = 1
    return Recommender(settings, llm=False, embedder=HashEmbedder())


def test_absolute_dataset_path_writes_nothing_into_the_data_folder(tmp_path):
    folder = tmp_path / "data" / "shop"
    write_dataset_folder(tiny_dataset(), folder)
    before = snapshot(folder)
    rec = rec_for(tmp_path / "state", folder.resolve())
    result = rec.recommend("1", k=3)
    assert len(result.items) == 3
    assert snapshot(folder) == before
    root = rec.state.root
    assert root.parent == (tmp_path / "state" / "derived").resolve() and root.name.startswith("shop-")
    written = {p.name for p in root.iterdir()}
    assert "chroma" in written and any(n.startswith("collab-") and n.endswith(".npz") for n in written)


def test_same_named_folders_with_different_content_get_separate_stores(tmp_path):
    first, second = tmp_path / "a" / "shop", tmp_path / "b" / "shop"
    write_dataset_folder(tiny_dataset(seed=0), first)
    write_dataset_folder(tiny_dataset(seed=1), second)
    items = pd.read_csv(second / "items.csv")
    items["title"] = "Other " + items["title"]
    items.to_csv(second / "items.csv", index=False)
    stored = {}
    for parent in (first.parent, second.parent):  # the dataset named by a relative name, as the CLI allows
        rec = rec_for(tmp_path / "state", "shop", data_dir=parent)
        rec.recommend("1", k=2)
        got = rec.store.collection.get(ids=["100"], include=["documents"])
        stored[parent.name] = (rec.state.root, got["documents"][0], rec.dataset.catalog["100"].text())
    assert stored["a"][0] != stored["b"][0]
    for root, document, text in stored.values():
        assert document == text  # each store holds its own dataset's item text
    assert stored["a"][1] != stored["b"][1]


def test_identity_is_content_not_location(tmp_path):
    write_dataset_folder(tiny_dataset(), tmp_path / "x" / "shop")
    write_dataset_folder(tiny_dataset(), tmp_path / "y" / "shop")
    from promptrec.data import load_folder

    one, two = load_folder(tmp_path / "x" / "shop"), load_folder(tmp_path / "y" / "shop")
    assert dataset_identity(one) == dataset_identity(two)
    changed = tiny_dataset()
    changed.interactions.frame.loc[0, "rating"] = 1.0
    assert dataset_identity(changed) != dataset_identity(tiny_dataset())


def test_ml_latest_small_is_keyed_by_name_and_content(movielens, tmp_path):
    identity = dataset_identity(movielens)
    assert identity.startswith("ml-latest-small-") and len(identity) == len("ml-latest-small-") + 16
    assert DatasetState.for_dataset(tmp_path, movielens).root == (tmp_path / "derived" / identity).resolve()


def test_state_dir_inside_the_data_folder_is_refused(tmp_path):
    folder = tmp_path / "shop"
    write_dataset_folder(tiny_dataset(), folder)
    rec = rec_for(folder / "state", folder)
    with pytest.raises(ConfigError, match="inside the data folder"):
        rec.recommend("1", k=2)
    assert not (folder / "state").exists()
