import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from promptrec.collab import (EASE, ItemKNN, LinearTransition, Popularity, TimeLocalPopularity, Transition,
                              classic_blend)
from promptrec.retrieval import CollaborativeModel
from promptrec.testing import dataset_slice


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


def test_fit_is_cached_on_disk_and_reloaded(tiny, tmp_path, monkeypatch):
    first = CollaborativeModel({"classic": classic_blend()}, 1).fit_cached(tiny.interactions, tmp_path)
    files = list(tmp_path.glob("collab-*.npz"))
    assert len(files) == 1
    again = CollaborativeModel({"classic": classic_blend()}, 1)
    with monkeypatch.context() as patch:
        patch.setattr(CollaborativeModel, "fit", lambda *a: pytest.fail("refitted instead of loading"))
        loaded = again.fit_cached(tiny.interactions, tmp_path)
    history = tiny.interactions.history("2")
    assert np.allclose(loaded.score(history)["classic"], first.score(history)["classic"])
    other = CollaborativeModel({"ease": EASE(lambda_=10.0)}, 1).fit_cached(tiny.interactions, tmp_path)
    assert [p.name for p in tmp_path.glob("collab-*.npz")] == [f"collab-{other.fingerprint(tiny.interactions)}.npz"]


def every_scorer() -> dict:
    """One of each scorer (and the tuned blend), so every kind of fitted state is saved and loaded."""
    return {"classic": classic_blend(), "pop": Popularity(), "timepop": TimeLocalPopularity(bandwidth_days=30.0),
            "itemknn": ItemKNN(neighbors=20, half_life=2.0), "ease": EASE(lambda_=50.0),
            "transition": Transition(), "linear": LinearTransition(context=5)}


@pytest.fixture(scope="module")
def real_slice(movielens):
    return dataset_slice(movielens, n_users=60, max_history=80)


def test_saved_fit_scores_exactly_like_a_fresh_fit_on_real_data(real_slice, tmp_path, monkeypatch):
    log = real_slice.interactions
    fresh = CollaborativeModel(every_scorer(), 2).fit(log)
    CollaborativeModel(every_scorer(), 2).fit_cached(log, tmp_path)
    monkeypatch.setattr(CollaborativeModel, "fit", lambda *a: pytest.fail("refitted instead of loading"))
    loaded = CollaborativeModel(every_scorer(), 2).fit_cached(log, tmp_path)
    assert loaded.items == fresh.items and len(fresh.items) > 100
    for user in log.users[:10]:
        history, times = log.history(user), log.timestamps(user)
        got, want = loaded.score(history, times), fresh.score(history, times)
        assert set(got) == set(want)
        for name in want:
            assert np.array_equal(got[name], want[name]), name
        assert loaded.evidence("classic", history, fresh.items[0], times) == fresh.evidence(
            "classic", history, fresh.items[0], times)


def test_no_pickle_in_the_file(tiny, tmp_path):
    CollaborativeModel(every_scorer(), 1).fit_cached(tiny.interactions, tmp_path)
    (path,) = tmp_path.glob("collab-*.npz")
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    assert manifest["format"] == "promptrec-collab/1" and set(manifest["scorers"]) == set(every_scorer())
    assert all(a.dtype.kind in "biuf" for a in arrays.values())


class Planted:
    """A payload that would create a marker file if it were ever unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def corrupt_truncated(path, marker):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_flipped(path, marker):
    data = bytearray(path.read_bytes())
    for n in range(200, len(data), 97):
        data[n] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt_object_array(path, marker):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    payload = np.empty(1, dtype=object)
    payload[0] = Planted(marker)
    manifest = json.loads(arrays["manifest"].tobytes())
    arrays[manifest["scorers"]["ease"]["state"]["similarity_"]["key"]] = payload
    np.savez(path, **arrays)  # np.savez pickles the object array into the file


def corrupt_wrong_shape(path, marker):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    key = manifest["scorers"]["ease"]["state"]["similarity_"]["key"]
    arrays[key] = arrays[key][:-1]
    np.savez(path, **arrays)


def corrupt_manifest(path, marker):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    manifest["scorers"]["ease"]["config"]["lambda_"] = 1.0
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage", [corrupt_truncated, corrupt_flipped, corrupt_object_array, corrupt_wrong_shape,
                                    corrupt_manifest])
def test_damaged_or_tampered_file_is_refitted_never_executed(tiny, tmp_path, damage):
    scorers = {"ease": EASE(lambda_=10.0), "itemknn": ItemKNN()}
    fresh = CollaborativeModel(scorers, 1).fit_cached(tiny.interactions, tmp_path)
    (path,) = tmp_path.glob("collab-*.npz")
    marker = tmp_path / "executed"
    damage(path, marker)
    fits = []
    model = CollaborativeModel({"ease": EASE(lambda_=10.0), "itemknn": ItemKNN()}, 1)
    original = model.fit
    model.fit = lambda log: fits.append(1) or original(log)
    model.fit_cached(tiny.interactions, tmp_path)
    assert fits == [1] and not marker.exists()
    history = tiny.interactions.history("3")
    for name in scorers:
        assert np.array_equal(model.score(history)[name], fresh.score(history)[name])
    with np.load(path, allow_pickle=False):  # rewritten as a clean file
        pass


def test_a_planted_pickle_beside_the_model_is_never_loaded(tiny, tmp_path):
    marker = tmp_path / "executed"
    fingerprint = CollaborativeModel({"ease": EASE(lambda_=10.0)}, 1).fingerprint(tiny.interactions)
    (tmp_path / f"collab-{fingerprint}.pkl").write_bytes(pickle.dumps(Planted(marker)))
    CollaborativeModel({"ease": EASE(lambda_=10.0)}, 1).fit_cached(tiny.interactions, tmp_path)
    assert not marker.exists() and not list(tmp_path.glob("*.pkl"))
