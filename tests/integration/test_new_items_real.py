"""A movie nobody has rated yet, added to a folder of real MovieLens data, is recommended to a user
whose history matches it: real MiniLM vectors, real Chroma, the ``cold`` fusion source, no language model."""

from __future__ import annotations

import pandas as pd
import pytest

from promptrec import Recommender
from promptrec.settings import Settings
from promptrec.testing import dataset_slice, write_dataset_folder

pytestmark = pytest.mark.integration

NEW = {"item_id": "990001", "title": "Little Dragon and the Toy Parade (2026)",
       "genres": "Adventure, Animation, Children, Comedy, Fantasy", "tags": ""}
KIDS = ("Animation", "Children")


@pytest.fixture(scope="module")
def folder(movielens, tmp_path_factory):
    path = tmp_path_factory.mktemp("shop")
    write_dataset_folder(dataset_slice(movielens, n_users=60, max_history=150), path)
    items = pd.read_csv(path / "items.csv", dtype=str, keep_default_na=False)
    pd.concat([items, pd.DataFrame([NEW])], ignore_index=True).to_csv(path / "items.csv", index=False)
    return path


def kids_share(rec: Recommender, user: str) -> float:
    history = rec.history(user).items
    return sum(all(g in rec.dataset.catalog[i].fields.get("genres", "") for g in KIDS) for i in history) / len(history)


# The default weight chosen on validation (0.1, missing collaborative scores at the pool minimum) is
# too small to bring a new item into a short list; this test shows the mechanism with the source
# weighted up and a new item's missing collaborative scores counted as neutral.
WEIGHTS = {"embedding": 0.02, "classic": 1.0, "cold": 1.0}


def test_a_new_movie_is_recommended_to_a_matching_user(folder, tmp_path):
    settings = Settings(dataset=str(folder), state_dir=tmp_path / "state", download=False,
                        fusion={"weights": WEIGHTS}, new_items={"neutral_missing": True})
    rec = Recommender(settings, llm=False)
    assert NEW["item_id"] in rec.dataset.catalog
    assert rec.dataset.interactions.item_counts.get(NEW["item_id"], 0) == 0
    users = sorted(rec.dataset.interactions.users, key=lambda u: (-kids_share(rec, u), u))
    fan, other = users[0], users[-1]
    assert kids_share(rec, fan) > 0.2 and kids_share(rec, other) < 0.05
    result = rec.recommend(fan, k=20)
    shown = {r.item_id: r for r in result.items}
    assert NEW["item_id"] in shown, [r.title for r in result.items]
    assert shown[NEW["item_id"]].explanation.startswith("New in the catalog: nobody has chosen it yet")
    assert NEW["item_id"] not in [r.item_id for r in rec.recommend(other, k=20).items]
