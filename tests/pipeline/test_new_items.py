"""A catalog item nobody has interacted with can be recommended (the ``cold`` source)."""


import numpy as np
import pytest

from promptrec import Recommender
from promptrec.data import Catalog, Dataset, Item
from promptrec.retrieval.store import make_client
from promptrec.testing import tiny_dataset

NEW = Item(item_id="999", title="Space Adventure Returns (2001)", fields={"genres": "space, adventure", "tags": "sequel"})


def with_new_item():
    tiny = tiny_dataset()
    return Dataset("tiny-new", Catalog([*tiny.catalog, NEW]), tiny.interactions, tiny.reports)


def build(settings, hash_embedder, weights, slot=None):
    fusion = settings.fusion.model_copy(update={"weights": weights, "min_item_support": 1,
                                                "params": {"ease": {"lambda_": 10.0}}})
    new_items = settings.new_items.model_copy(update={"slot": slot})
    settings = settings.model_copy(update={"fusion": fusion, "new_items": new_items})
    return Recommender(settings, dataset=with_new_item(), llm=False, embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))


def space_fan(rec):
    return next(u for u in rec.dataset.interactions.users
                if sum("Space" in rec.dataset.catalog[i].title for i in rec.history(u).items) >= 4)


def test_a_new_item_is_recommended_to_a_user_whose_history_matches_it(settings, hash_embedder):
    rec = build(settings, hash_embedder, {"ease": 1.0, "cold": 1.0})
    user = space_fan(rec)
    result = rec.recommend(user, k=5)
    shown = {r.item_id: r for r in result.items}
    assert NEW.item_id in shown
    assert shown[NEW.item_id].explanation.startswith("New in the catalog: nobody has chosen it yet")
    counts = rec.dataset.interactions.item_counts
    assert NEW.item_id in rec.retriever.new_items.items
    assert all(counts.get(i, 0) == 0 for i in rec.retriever.new_items.items)  # min_item_support 1: only unseen items
    # a user of another taste does not get it at the top
    other = next(u for u in rec.dataset.interactions.users
                 if sum("Romantic" in rec.dataset.catalog[i].title for i in rec.history(u).items) >= 4)
    assert NEW.item_id not in [r.item_id for r in rec.recommend(other, k=3).items]


def test_without_the_cold_source_and_the_reserved_place_the_new_item_is_never_shown(settings, hash_embedder):
    rec = build(settings, hash_embedder, {"ease": 1.0}, slot=0)
    user = space_fan(rec)
    assert rec.retriever.new_items is None
    assert NEW.item_id not in [r.item_id for r in rec.recommend(user, k=10).items]


def test_the_reserved_place_shows_the_new_item_without_changing_the_rest_of_the_list(settings, hash_embedder):
    plain = build(settings, hash_embedder, {"ease": 1.0}, slot=0)
    user = space_fan(plain)
    before = [r.item_id for r in plain.recommend(user, k=5).items]
    rec = build(settings, hash_embedder, {"ease": 1.0}, slot=3)
    result = rec.recommend(user, k=5)
    after = [r.item_id for r in result.items]
    assert after[2] == NEW.item_id  # position 3
    assert after[:2] + after[3:] == before[:4]  # the others keep their order, the 5th drops out
    assert result.items[2].explanation.startswith("New in the catalog: nobody has chosen it yet")
    assert [r.rank for r in result.items] == [1, 2, 3, 4, 5]
    # the place is used only when the list has no new item in it: a list of 2 takes the new item as 2nd
    assert [r.item_id for r in rec.recommend(user, k=2).items] == [before[0], NEW.item_id]


def test_the_reserved_place_respects_exclusions(settings, hash_embedder):
    rec = build(settings, hash_embedder, {"ease": 1.0}, slot=3)
    user = space_fan(rec)
    assert NEW.item_id not in [r.item_id for r in rec.recommend(user, k=5, exclude=[NEW.item_id]).items]


def test_place_new_moves_the_best_new_item_only_when_the_top_has_none():
    from promptrec.retrieval.new_slot import place_new

    nan = float("nan")
    is_new = [False, True, False, True, False]
    cold = [nan, 0.2, nan, 0.9, nan]
    assert place_new([0, 2, 4, 1, 3], is_new, cold, 2) == [0, 3, 2, 4, 1]  # the best new (3), not the first
    assert place_new([0, 3, 2, 4, 1], is_new, cold, 2) == [0, 3, 2, 4, 1]  # already there: unchanged
    assert place_new([0, 2, 4], is_new, cold, 2) == [0, 3, 2, 4]  # not in the order: inserted
    assert place_new([0, 2], is_new, cold, 5) == [0, 2, 3]  # a short order: at its end
    assert place_new([0, 2, 4], is_new, cold, 0) == [0, 2, 4]
    assert place_new([0, 2, 4], is_new, [nan] * 5, 2) == [0, 2, 4]  # no scored new item


def test_the_fitted_map_is_kept_and_reused(settings, hash_embedder):
    rec = build(settings, hash_embedder, {"ease": 1.0, "cold": 1.0})
    rec.recommend(space_fan(rec), k=3)
    files = sorted(p.name for p in rec.state.collab.glob("transfer-*"))
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npz")
    again = build(settings, hash_embedder, {"ease": 1.0, "cold": 1.0})
    assert again.new_items.transfer.meta == rec.new_items.transfer.meta
    assert sorted(p.name for p in again.state.collab.glob("transfer-*")) == files


def test_forget_deletes_the_map_fitted_on_everyone(settings, hash_embedder):
    rec = build(settings, hash_embedder, {"ease": 1.0, "cold": 1.0})
    rec.recommend(space_fan(rec), k=3)
    assert list(rec.state.collab.glob("transfer-*"))
    report = rec.forget("1")
    assert not list(rec.state.collab.glob("transfer-*")) and report.collab_models == 2  # the EASE fit and the map


def test_missing_collaborative_scores_of_new_items_count_as_neutral():
    import numpy as np

    from promptrec.retrieval.retriever import neutral_for_new

    sources = {"classic": np.array([3.0, 1.0, np.nan, np.nan]), "embedding": np.array([0.1, 0.2, np.nan, 0.4]),
               "cold": np.array([1.0, 2.0, 5.0, np.nan])}
    out = neutral_for_new(sources, np.array([False, False, True, False]))
    assert out["classic"][2] == 2.0 and np.isnan(out["classic"][3])  # only the new item is filled
    assert np.array_equal(out["embedding"], sources["embedding"], equal_nan=True)
    assert np.array_equal(out["cold"], sources["cold"], equal_nan=True)


def test_the_map_reads_the_catalog_text_without_user_tags_by_default(settings, hash_embedder):
    from promptrec.knowledge.item_text import ItemTextVectors, new_item_view

    rec = build(settings, hash_embedder, {"ease": 1.0, "cold": 1.0})
    assert rec.settings.new_items.text == "raw"
    tagged = Item(item_id="7", title="Heat (1995)", fields={"genres": "Crime", "tags": "heist, De Niro"})
    assert new_item_view(tagged).text() == Item(item_id="7", title="Heat (1995)", fields={"genres": "Crime"}).text()
    assert "heist" in tagged.text() and "heist" not in new_item_view(tagged).text()
    rec.recommend(space_fan(rec), k=3)
    vectors = ItemTextVectors(rec.dataset.catalog, _cache(rec))
    want = hash_embedder.embed([new_item_view(NEW).text()])[0]
    assert np.allclose(vectors.vectors([NEW.item_id])[NEW.item_id], want)
    # the map was fitted on those vectors: the new item's mapped factors are the map applied to them
    assert np.allclose(rec.new_items.factors[rec.new_items.index[NEW.item_id]],
                       rec.new_items.transfer.map(want[None, :])[0], atol=1e-5)


def _cache(rec):
    from promptrec.knowledge.vector_cache import VectorCache

    return VectorCache(rec.embedder, rec.state.collab / "vectors")


def test_joined_text_puts_the_models_features_beside_the_raw_vector(settings, hash_embedder):
    from promptrec.knowledge.item_text import ItemTextVectors, joined_vectors, new_item_view
    from promptrec.types import ItemFeatures

    features = {NEW.item_id: ItemFeatures(themes=["space travel"], mood="hopeful", audience="families", description="")}
    catalog = with_new_item().catalog
    cache = _cache(build(settings, hash_embedder, {"ease": 1.0}))
    joined = ItemTextVectors(catalog, cache, features)
    raw = hash_embedder.embed([new_item_view(NEW).text()])[0]
    known = hash_embedder.embed([features[NEW.item_id].text()])[0]
    got = joined.vectors([NEW.item_id, "no-such-item"])
    assert list(got) == [NEW.item_id]
    assert np.allclose(got[NEW.item_id], joined_vectors(raw[None, :], known[None, :])[0])
    assert np.isclose(np.linalg.norm(got[NEW.item_id]), 1.0, atol=1e-5)
    plain = ItemTextVectors(catalog, cache)
    other = next(i for i in catalog.ids if i != NEW.item_id)  # no features: its raw vector on both halves
    assert np.allclose(joined.vectors([other])[other], np.hstack([plain.vectors([other])[other]] * 2) / np.sqrt(2))
    # the hashes name the texts, so the fitted map is refitted when the model's features change
    assert joined.stored_hashes()[NEW.item_id] != plain.stored_hashes()[NEW.item_id]
    assert joined.stored_hashes()[other] != plain.stored_hashes()[other]


def test_joined_text_is_used_when_asked(settings, hash_embedder):
    rec = build(settings, hash_embedder, {"ease": 1.0, "cold": 1.0})
    joined_settings = settings.model_copy(update={"new_items": settings.new_items.model_copy(update={"text": "joined"})})
    joined = build(joined_settings, hash_embedder, {"ease": 1.0, "cold": 1.0})
    assert joined.new_items.factors.shape[0] == rec.new_items.factors.shape[0]
    assert joined.new_items.transfer.meta["fingerprint"] != rec.new_items.transfer.meta["fingerprint"]


def test_model_text_puts_the_models_own_centred_vector_beside_the_raw_one(settings, hash_embedder):
    from promptrec.knowledge.item_text import ItemTextVectors, joined_vectors, new_item_view
    from promptrec.knowledge.model_vectors import centred
    from promptrec.knowledge.vector_cache import VectorCache

    class ModelLike:  # stands in for ModelVectors (the real GGUF is read in tests/knowledge/test_model_vectors.py)
        name, dimension = "llm-mean:toy", hash_embedder.dimension

        def embed(self, texts):
            return hash_embedder.embed([t[::-1] for t in texts])  # another vector of the same text

    catalog = with_new_item().catalog
    cache = _cache(build(settings, hash_embedder, {"ease": 1.0}))
    model_cache = VectorCache(ModelLike(), settings.state_dir / "model-vectors")
    vectors = ItemTextVectors(catalog, cache, model_cache=model_cache)
    texts = [new_item_view(it).text() for it in catalog]
    model = centred(ModelLike().embed(texts))  # centred on the whole catalog
    want = joined_vectors(hash_embedder.embed(texts), model)
    got = vectors.vectors([NEW.item_id, "no-such-item"])
    assert list(got) == [NEW.item_id]
    assert np.allclose(got[NEW.item_id], want[catalog.ids.index(NEW.item_id)], atol=1e-5)
    plain = ItemTextVectors(catalog, cache)
    assert vectors.stored_hashes()[NEW.item_id] != plain.stored_hashes()[NEW.item_id]  # switching refits the map


def test_model_text_needs_a_local_model(settings, hash_embedder):
    import pytest

    from promptrec.errors import ConfigError

    llm = settings.llm.model_copy(update={"backend": "openai", "model": "gpt-x"})
    model_text = settings.model_copy(update={"new_items": settings.new_items.model_copy(update={"text": "model"}),
                                             "llm": llm})
    rec = build(model_text, hash_embedder, {"ease": 1.0, "cold": 1.0})
    with pytest.raises(ConfigError, match="new_items.text=model"):
        rec.new_items


@pytest.mark.integration
def test_model_text_with_the_real_small_model_recommends_the_new_item(settings, hash_embedder):
    llm = settings.llm.model_copy(update={"backend": "llamacpp", "model": "small"})
    model_text = settings.model_copy(update={"new_items": settings.new_items.model_copy(update={"text": "model"}),
                                             "llm": llm})
    rec = build(model_text, hash_embedder, {"ease": 1.0, "cold": 1.0})
    assert NEW.item_id in rec.new_items.items
    vectors = list((rec.state.collab / "vectors").glob("vectors-llm-mean*.npy"))
    assert vectors  # the model's vectors are kept under the state dir, beside the text vectors
    # fitted on raw + model vectors: each new item's mapped factors are finite, and recommend() can rank it
    assert np.isfinite(rec.new_items.factors).all()
    user = space_fan(rec)
    result = rec.recommend(user, k=10)
    assert len(result.items) == 10
    # the map reads the text vector and the model's vector side by side (SmolLM2-135M: 576 dimensions)
    assert rec.new_items.transfer.weights.shape[0] == hash_embedder.dimension + 576
