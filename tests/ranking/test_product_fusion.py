"""The learned fusion in the product: fit_fusion trains and saves it; the retriever ranks with it when it won."""

import json

import numpy as np
import pytest

from promptrec import Recommender
from promptrec.ranking.learned import FusionModelError, LearnedFusion
from promptrec.ranking.product import MODEL_FILE, truncate_log
from promptrec.retrieval.store import make_client
from promptrec.testing import tiny_dataset


@pytest.fixture
def data():
    return tiny_dataset(n_users=45, items_per_genre=10)


def build(settings, data, hash_embedder, learned="auto"):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0, "transition": 1.0},
                                                "min_item_support": 1, "params": {"ease": {"lambda_": 10.0}},
                                                "learned": learned})
    settings = settings.model_copy(update={"fusion": fusion})
    return Recommender(settings, dataset=data, llm=False, embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))


def test_truncate_log_holds_out_the_nth_most_recent_item(data):
    log = data.interactions
    truncated, targets = truncate_log(log, 2)
    user = "1"
    full = log.history(user)
    assert targets[user] == (full[-2], 2)
    assert truncated.history(user) == full[:-2]


def test_fit_fusion_saves_a_model_with_its_training_metadata(settings, data, hash_embedder):
    rec = build(settings, data, hash_embedder)
    model = rec.fit_fusion(folds=2, kind="lightgbm", params={"rounds": 20, "min_data_in_leaf": 5})
    saved = json.loads((rec.state.root / MODEL_FILE).read_text())
    meta = saved["metadata"]
    assert saved["signals"] == model.signals and saved["signals_hash"] == model.signals_hash
    assert meta["folds"] == 2 and meta["users"] == 45 and len(meta["dataset_sha256"]) == 64
    assert meta["pool_depth"] == settings.fusion.learned_depth and saved["kind"] == "lightgbm"
    assert meta["lightgbm_version"] == "4.7.0"
    assert set(meta["validation"]) >= {"learned_N@10", "hand_weighted_N@10"}
    assert meta["won_on_validation"] == (meta["validation"]["learned_N@10"] > meta["validation"]["hand_weighted_N@10"])
    lo, hi = meta["validation"]["difference_95ci_over_users"]
    difference = meta["validation"]["learned_N@10"] - meta["validation"]["hand_weighted_N@10"]
    assert lo <= difference + 1e-6 and difference - 1e-6 <= hi and lo < hi


def _force(rec, won: bool, **changes):
    path = rec.state.root / MODEL_FILE
    data = json.loads(path.read_text())
    data["metadata"]["won_on_validation"] = won
    data.update(changes)
    path.write_text(json.dumps(data))
    rec.__dict__.pop("ranker", None)
    rec.__dict__.pop("engine", None)


def test_the_retriever_ranks_with_the_model_only_when_it_won(settings, data, hash_embedder):
    rec = build(settings, data, hash_embedder)
    summed = [c.item_id for c in rec.retriever.retrieve(rec.history("3"), depth=8)]
    rec.fit_fusion(folds=2, kind="linear", params={"l2": 1.0})
    _force(rec, won=False)
    assert rec.ranker is None
    assert [c.item_id for c in rec.retriever.retrieve(rec.history("3"), depth=8)] == summed
    _force(rec, won=True)
    assert rec.ranker is not None
    history = rec.history("3")
    found = rec.retriever.retrieve(history, depth=8)
    items, _ = rec.retriever.pool(history)
    scores = rec.ranker(history, items)
    expected = [items[n] for n in np.argsort(-scores, kind="stable")[:8]]
    assert [c.item_id for c in found] == expected
    assert all(c.scores and np.isclose(c.fused, s) for c, s in zip(found, sorted(scores, reverse=True)))
    result = rec.recommend("3", k=5)
    assert [r.item_id for r in result.items] == expected[:5] and result.ordered_by == "fusion"


def test_a_model_for_other_signals_is_ignored_in_auto_and_refused_in_on(settings, data, hash_embedder):
    rec = build(settings, data, hash_embedder)
    rec.fit_fusion(folds=2, kind="linear")
    _force(rec, won=True, signals_hash="0000000000000000")
    assert rec.ranker is None
    strict = build(settings, data, hash_embedder, learned="on")
    with pytest.raises(FusionModelError, match="other signals"):
        strict.ranker


def test_on_without_a_model_is_a_one_line_error_and_off_ignores_it(settings, data, hash_embedder):
    with pytest.raises(FusionModelError, match="fit_fusion") as err:
        build(settings, data, hash_embedder, learned="on").ranker
    assert "\n" not in str(err.value)
    rec = build(settings, data, hash_embedder, learned="off")
    rec.fit_fusion(folds=2, kind="linear")
    _force(rec, won=True)
    assert rec.ranker is None


def test_forget_deletes_the_fusion_model(settings, data, hash_embedder):
    rec = build(settings, data, hash_embedder)
    rec.fit_fusion(folds=2, kind="linear")
    assert (rec.state.root / MODEL_FILE).exists()
    rec.forget("3")
    assert not (rec.state.root / MODEL_FILE).exists()
    assert isinstance(LearnedFusion, type)


def test_the_default_learner_is_the_validated_one_and_it_ranks_the_deeper_pool(settings, data, hash_embedder):
    fusion = settings.fusion.model_copy(update={"candidate_depth": 3, "learned_depth": 6})
    rec = build(settings.model_copy(update={"fusion": fusion}), data, hash_embedder)
    assert rec.retriever.pool_depth == 3
    small, _ = rec.retriever.pool(rec.history("3"))
    model = rec.fit_fusion(folds=2)
    assert model.kind == "linear" and model.metadata["pool_depth"] == 6
    _force(rec, won=True)
    assert rec.retriever.pool_depth == 6
    deep, _ = rec.retriever.pool(rec.history("3"))
    assert set(small) < set(deep)  # the ranker sees every source's top 6, the weighted sum its top 3
    # the model file says which depth it learned from: a later setting does not change the pools it ranks
    other = settings.fusion.model_copy(update={"candidate_depth": 3, "learned_depth": 4})
    again = build(settings.model_copy(update={"fusion": other}), data, hash_embedder)
    assert again.ranker is not None and again.retriever.pool_depth == 6


class CountingReader:
    """A stand-in for the knowledge model's vector reader (ModelVectors' shape) that counts its calls."""

    def __init__(self):
        from promptrec.testing import HashEmbedder

        self.inner = HashEmbedder(dimension=16, name="model")
        self.name, self.dimension, self.calls = "llm-mean:fake.gguf@0123", 16, 0

    def embed(self, texts):
        self.calls += 1
        return self.inner.embed([t + " extra" for t in texts])


def test_model_vectors_are_read_once_and_the_product_ranks_with_the_cached_ones(settings, data, hash_embedder):
    rec = build(settings, data, hash_embedder)
    reader = CountingReader()
    model = rec.fit_fusion(folds=2, kind="linear", model_vectors=reader)
    meta = model.metadata
    assert meta["model_vectors"] == reader.name and meta["items_with_model_vectors"] == len(list(data.catalog))
    assert reader.calls > 0
    calls = reader.calls
    _force(rec, won=True)
    ranker = rec.ranker  # a fresh signal builder: the vectors come from the state dir, not from the reader
    assert ranker is not None and reader.calls == calls
    vectors = ranker.builder.knowledge.model_vectors
    assert set(vectors) == {it.item_id for it in data.catalog}
    history = rec.history("3")
    items, _ = rec.retriever.pool(history)
    column = ranker.builder.names.index("model_sim")
    assert np.isfinite(ranker.builder.matrix(history, items)[:, column]).all()
    # a model fitted without them reads none
    rec.fit_fusion(folds=2, kind="linear")
    _force(rec, won=True)
    assert rec.ranker.builder.knowledge.model_vectors == {}


def test_a_model_whose_vectors_are_gone_falls_back_in_auto_and_says_how_to_refit_in_on(settings, data, hash_embedder):
    rec = build(settings, data, hash_embedder)
    rec.fit_fusion(folds=2, kind="linear", model_vectors=CountingReader())
    _force(rec, won=True)
    for path in (rec.state.root / "vectors").glob("vectors-llm-mean_*"):
        path.unlink()
    rec.__dict__.pop("ranker", None)
    assert rec.ranker is None
    strict = build(settings, data, hash_embedder, learned="on")
    with pytest.raises(FusionModelError, match="--model-vectors") as err:
        strict.ranker
    assert "\n" not in str(err.value)
