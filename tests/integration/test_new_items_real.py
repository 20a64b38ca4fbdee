"""A catalog item nobody has interacted with reaches a real user's list: a slice of ml-latest-small plus
real catalog items none of its users touched, the real MiniLM embedder, a real Chroma store, the
transfer map fitted on the slice, and the reserved place for a new item (``new_items.slot``)."""

from __future__ import annotations

import pytest

from promptrec import Recommender
from promptrec.data import Catalog, Dataset
from promptrec.settings import Settings
from promptrec.testing import dataset_slice

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(movielens):
    real = dataset_slice(movielens, n_users=40, max_history=40)
    seen = set(real.catalog.ids)
    unseen = [item for item in movielens.catalog if item.item_id not in seen][:300]  # real items, no interactions
    return Dataset("slice-with-new", Catalog([*real.catalog, *unseen]), real.interactions, real.reports)


def settings_for(tmp_path, slot):
    return Settings(state_dir=tmp_path, new_items={"slot": slot},
                    fusion={"weights": {"embedding": 0.02, "classic": 1.0}, "min_item_support": 1})


def test_the_reserved_place_shows_a_never_chosen_item_and_says_so(data, tmp_path):
    counts = data.interactions.item_counts
    plain = Recommender(settings_for(tmp_path, 0), dataset=data, llm=False)
    user = data.interactions.users[0]
    before = plain.recommend(user, k=6)
    assert all(counts.get(r.item_id, 0) > 0 for r in before.items)  # without the place: only chosen items
    rec = Recommender(settings_for(tmp_path, 6), dataset=data, llm=False)
    after = rec.recommend(user, k=6)
    new = after.items[5]
    assert counts.get(new.item_id, 0) == 0 and new.item_id in data.catalog.ids
    assert new.explanation.startswith("New in the catalog: nobody has chosen it yet")
    assert [r.item_id for r in after.items[:5]] == [r.item_id for r in before.items[:5]]
    # the map scores new items by the history: two users of different tastes get different new items
    picks = {rec.recommend(u, k=6).items[5].item_id for u in data.interactions.users[:12]}
    assert len(picks) >= 3
