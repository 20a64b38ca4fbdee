"""Per-candidate signals: names, values, missing-value handling, the vector cache."""

import os

import numpy as np
import pytest

from promptrec.collab import EASE
from promptrec.collab.blend import WeightedBlend
from promptrec.collab.sequential import Transition
from promptrec.knowledge.vector_cache import VectorCache
from promptrec.ranking.signals import (ItemKnowledge, SignalBuilder, collab_sources, signal_names,
                                       signals_hash, words)
from promptrec.retrieval import CollaborativeModel
from promptrec.types import History, ItemFeatures, UserProfile


class CountingEmbedder:
    def __init__(self, inner):
        self.inner, self.name, self.dimension, self.calls = inner, inner.name, inner.dimension, 0

    def embed(self, texts):
        self.calls += len(texts)
        return self.inner.embed(texts)


@pytest.fixture
def world(tiny, hash_embedder, tmp_path):
    blend = WeightedBlend({"ease": EASE(lambda_=10.0), "transition": Transition()}, weights={"ease": 1.0, "transition": 1.0})
    collab = CollaborativeModel({"classic": blend, "ease": EASE(lambda_=10.0)}, min_support=1).fit(tiny.interactions)
    first = next(iter(tiny.catalog))
    features = {first.item_id: ItemFeatures(themes=["space travel", "heroes"], mood="hopeful", audience="families",
                                            description="A crew explores distant planets.")}
    vectors = VectorCache(CountingEmbedder(hash_embedder), tmp_path / "vectors")
    knowledge = ItemKnowledge.build(tiny.catalog, features, vectors, tiny.interactions)
    return SignalBuilder(collab, knowledge, vectors), first.item_id


def test_signal_names_cover_every_collaborative_score_and_blend_component(world):
    builder, _ = world
    assert builder.sources == ["classic", "classic.ease", "classic.transition", "ease"]
    assert collab_sources(builder.collab.scorers) == builder.sources
    assert builder.names[:2] == ["cf:classic", "cf_rank:classic"]
    assert {"text_sim", "feat_sim", "profile_sim_raw", "like_overlap", "dislike_overlap", "pop_log"} <= set(builder.names)
    assert signals_hash(builder.sources) != signals_hash(builder.sources[:-1])


def test_matrix_values_and_missing_knowledge(world, tiny):
    builder, described = world
    history = History(items=tiny.interactions.history("1"), timestamps=tiny.interactions.timestamps("1"))
    items = [i.item_id for i in tiny.catalog if i.item_id not in [*history.items, described]][:6] + [described]
    X = builder.matrix(history, items)
    col = {n: X[:, j] for j, n in enumerate(builder.names)}
    assert X.shape == (len(items), len(builder.names))
    scores = builder.collab.score(history.items, history.timestamps)["ease"]
    assert np.allclose(col["cf:ease"], [scores[builder.collab.index[i]] for i in items])
    assert sorted(col["cf_rank:ease"] * len(items)) == list(range(len(items)))
    assert col["cf_rank:ease"][int(np.argmax(col["cf:ease"]))] == 0
    assert np.allclose(col["pop_log"], np.log1p([tiny.interactions.item_counts.get(i, 0) for i in items]))
    # only the described item has a feature vector; no history item does, so feat_sim is missing everywhere
    assert col["has_features"].tolist() == [0.0] * 6 + [1.0]
    assert np.isnan(col["feat_sim"]).all() and np.isnan(col["theme_share"]).all()
    assert np.isnan(col["profile_sim_raw"]).all() and np.isnan(col["like_overlap"]).all()
    assert (col["has_profile"] == 0).all()
    assert np.isfinite(col["text_sim"]).all() and (col["text_sim"] <= 1.0 + 1e-6).all()


def test_profile_signals(world, tiny):
    builder, described = world
    history = History(items=tiny.interactions.history("2"))
    profile = UserProfile(likes=["space adventures"], dislikes=["romantic comedies"], recent_interests=[], summary="")
    items = [i.item_id for i in tiny.catalog if i.item_id not in history.items]
    col = {n: builder.matrix(history, items, profile)[:, j] for j, n in enumerate(builder.names)}
    genres = {i.item_id: i.fields["genres"] for i in tiny.catalog}
    for n, item in enumerate(items):
        assert col["like_overlap"][n] == (2.0 if "space" in genres[item] else 0.0)  # space + adventure; themes add nothing new
        assert col["dislike_overlap"][n] == (2.0 if "romantic" in genres[item] else 0.0)
    assert (col["has_profile"] == 1).all() and np.isfinite(col["profile_sim_raw"]).all()


def test_model_vector_signals(world, tiny, hash_embedder, tmp_path):
    from dataclasses import replace

    from promptrec.knowledge.model_vectors import model_vector_map

    builder, _ = world
    history = History(items=tiny.interactions.history("1"), timestamps=tiny.interactions.timestamps("1"))
    items = [i.item_id for i in tiny.catalog if i.item_id not in history.items]
    col = {n: builder.matrix(history, items)[:, j] for j, n in enumerate(builder.names)}
    assert np.isnan(col["model_sim"]).all() and np.isnan(col["model_sim_max"]).all()  # no model vectors: missing
    # model_vector_map: centred over the given items, every item of the catalog, each block saved
    cache = VectorCache(CountingEmbedder(hash_embedder), tmp_path / "model")
    seen = []
    vectors = model_vector_map(list(tiny.catalog), cache, seen.append, block=5)
    assert set(vectors) == {i.item_id for i in tiny.catalog} and sum(seen) == len(tiny.catalog)
    stacked = np.stack(list(vectors.values()))
    assert np.allclose(np.linalg.norm(stacked, axis=1), 1.0)
    knowledge = replace(builder.knowledge, model_vectors=vectors)
    with_model = SignalBuilder(builder.collab, knowledge)
    col = {n: with_model.matrix(history, items)[:, j] for j, n in enumerate(with_model.names)}
    recent = np.stack([vectors[i] for i in history.items[-10:]])
    best = [float(np.max(recent @ vectors[i])) for i in items]
    assert np.allclose(col["model_sim_max"], best)
    assert np.isfinite(col["model_sim"]).all() and (np.abs(col["model_sim"]) <= 1 + 1e-6).all()
    from promptrec.ranking.signals import _mean_vector

    mean = _mean_vector(history.items, vectors, with_model.half_life, with_model.window)
    assert np.allclose(col["model_sim"], [vectors[i] @ mean for i in items])


def test_words_drop_stop_words_and_plurals():
    assert words("The Romantic Comedies of space") == {"romantic", "comedy", "space"}


def test_vector_cache_embeds_each_text_once_and_persists(hash_embedder, tmp_path):
    counting = CountingEmbedder(hash_embedder)
    cache = VectorCache(counting, tmp_path)
    a = cache.embed(["one text", "another text"])
    cache.embed(["one text"])
    assert counting.calls == 2
    again = VectorCache(CountingEmbedder(hash_embedder), tmp_path)
    assert np.allclose(again.embed(["another text", "one text"]), a[::-1]) and again.embedder.calls == 0
    assert list(tmp_path.glob("*.npy")) and not list(tmp_path.glob("*.pkl"))


def test_signal_names_are_stable_in_order():
    assert signal_names(["a"])[:2] == ["cf:a", "cf_rank:a"]


def test_theme_share_counts_the_recent_history_items_with_each_theme():
    from promptrec.ranking.signals import _theme_share

    themes = {"h1": frozenset({"space", "tense"}), "h2": frozenset({"space", "dark"}), "h3": frozenset({"war", "dark"}),
              "c1": frozenset({"space", "dark"}), "c2": frozenset({"magic", "funny"})}
    out = _theme_share(themes, ["h1", "h2", "h3", "x"], ["c1", "c2", "c3"])
    assert out[0] == pytest.approx((2 / 3 + 2 / 3) / 2) and out[1] == 0.0 and np.isnan(out[2])
    assert np.isnan(_theme_share(themes, ["x"], ["c1"])).all()  # no described history item


def test_theme_share_does_not_depend_on_the_string_hash_seed():
    """A frozenset's order follows PYTHONHASHSEED: summed in that order, the mean moved by an ulp between runs."""
    import subprocess
    import sys

    script = (
        "from promptrec.ranking.signals import _theme_share\n"
        "counts = [0, 4, 8, 7, 6, 4, 7, 5, 9]  # shares c/9 whose float sum depends on the order\n"
        "history = {f'h{j}': frozenset(f'theme{k}' for k, c in enumerate(counts) if j < c) for j in range(9)}\n"
        "themes = {**history, 'x': frozenset(f'theme{k}' for k in range(9))}\n"
        "print(repr(float(_theme_share(themes, list(history), ['x'])[0])))\n")
    found = {subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                            capture_output=True, text=True, check=True).stdout for seed in range(8)}
    assert len(found) == 1 and abs(float(found.pop()) - 50 / 81) < 1e-12
