"""What the closed feature report measures: pick shares and themes confirmed by the item's own text."""

import pytest

from promptrec.data import Catalog, Item
from promptrec.evaluation.feature_quality import closed_picks
from promptrec.knowledge import FeatureRecord
from promptrec.types import ItemFeatures


def record(item_id, themes, mood="dark", audience="adults"):
    features = ItemFeatures(themes=themes, mood=mood, audience=audience, description="")
    return FeatureRecord(item_id=item_id, features=features, model_id="m", template_hash="t")


CATALOG = Catalog([
    Item(item_id="1", title="Apollo 13 (1995)", fields={"genres": "Drama", "tags": "space, nasa"}),
    Item(item_id="2", title="Heat (1995)", fields={"genres": "Crime, Thriller", "tags": "heist, robbery"}),
    Item(item_id="3", title="Casablanca (1942)", fields={"genres": "Romance, War", "tags": "classic"}),
    Item(item_id="4", title="Untagged (2001)", fields={"genres": "Drama"}),
])


def test_themes_that_share_a_word_with_the_items_own_text_count_and_shuffling_breaks_them():
    records = [record("1", ["space"]), record("2", ["heist", "crime"]), record("3", ["love story", "war"]),
               record("4", ["family"], mood="tense")]
    picks = closed_picks(records, CATALOG, ["1", "2", "3", "4", "5"])
    assert picks["items"] == 4 and picks["tagged_items"] == 3
    assert picks["confirmed_by_tags"] == 1.0  # space/space, heist/heist, war/War
    assert picks["confirmed_shuffled"] < 1.0  # the same records on other items mostly miss
    assert picks["mood"] == {"dark": 0.75, "tense": 0.25} and picks["audience"] == {"adults": 1.0}
    assert picks["distinct_themes"] == 6


def test_an_item_whose_themes_miss_its_text_is_not_confirmed():
    picks = closed_picks([record("1", ["zombies"]), record("2", ["magic"])], CATALOG, ["1", "2"])
    assert picks["confirmed_by_tags"] == 0.0


def test_next_item_recall_finds_a_target_only_its_vectors_point_to():
    import numpy as np
    import pandas as pd

    from promptrec.evaluation.feature_quality import next_item_recall
    from promptrec.evaluation.splits import leave_last_out

    # 4 users, 30 items: each user's train items and validation target share a direction in "aligned"
    rows, rng = [], np.random.default_rng(0)
    items = [str(i) for i in range(30)]
    for u in range(4):
        own = items[u * 5:(u + 1) * 5]  # train 3, validation 1, test 1
        rows += [(f"u{u}", i, t, 4.0) for t, i in enumerate(own)]
    split = leave_last_out(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]))
    aligned = {i: np.eye(8)[int(i) // 5 % 8] + 0.01 * rng.normal(size=8) for i in split.items}
    scrambled = {i: rng.normal(size=8) for i in split.items}
    unit = {name: {i: v / np.linalg.norm(v) for i, v in vecs.items()} for name, vecs in
            (("aligned", aligned), ("scrambled", scrambled))}
    found = next_item_recall(split, "valid", unit, k=2)
    assert found["rows"]["aligned"]["all"] == 1.0  # the target (and the test item) are the user's nearest non-history
    assert found["rows"]["scrambled"]["all"] < 1.0
    assert found["chance"] == pytest.approx(np.mean([2 / (len(split.items) - 3)] * 4))
    same = {i: np.ones(8) / np.sqrt(8) for i in split.items}  # one text for every item: all tied
    assert next_item_recall(split, "valid", {"same": same}, k=2)["rows"]["same"]["all"] == pytest.approx(found["chance"])
