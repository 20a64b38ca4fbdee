"""What the closed feature report measures: pick shares and themes confirmed by the item's own text."""

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
