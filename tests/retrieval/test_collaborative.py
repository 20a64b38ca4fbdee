import numpy as np

from promptrec.collab import EASE, classic_blend
from promptrec.retrieval import CollaborativeModel


def test_scores_by_item_id_and_drops_unknown_history_items(tiny):
    model = CollaborativeModel({"ease": EASE(lambda_=10.0)}, min_support=1).fit(tiny.interactions)
    history = tiny.interactions.history("1")
    with_unknown = model.score([*history[:2], "no-such-item", *history[2:]])["ease"]
    assert np.allclose(with_unknown, model.score(history)["ease"])
    assert model.evidence("ease", history, "101") in history


def test_min_support_leaves_rare_items_out(tiny):
    counts = tiny.interactions.item_counts
    model = CollaborativeModel({"ease": EASE(lambda_=10.0)}, min_support=5).fit(tiny.interactions)
    assert set(model.items) == set(counts[counts >= 5].index)


def test_fit_is_cached_on_disk_and_reloaded(tiny, tmp_path):
    first = CollaborativeModel({"classic": classic_blend()}, 1).fit_cached(tiny.interactions, tmp_path)
    files = list(tmp_path.glob("collab-*.pkl"))
    assert len(files) == 1
    again = CollaborativeModel({"classic": classic_blend()}, 1)
    loaded = again.fit_cached(tiny.interactions, tmp_path)
    assert loaded is not again  # came from disk
    history = tiny.interactions.history("2")
    assert np.allclose(loaded.score(history)["classic"], first.score(history)["classic"])
    other = CollaborativeModel({"ease": EASE(lambda_=10.0)}, 1).fit_cached(tiny.interactions, tmp_path)
    assert [p.name for p in tmp_path.glob("collab-*.pkl")] == [f"collab-{other.fingerprint(tiny.interactions)}.pkl"]
