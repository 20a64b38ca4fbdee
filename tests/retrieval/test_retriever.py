import pytest

from promptrec.collab.neighbors import EASE, ItemKNN
from promptrec.retrieval import CandidateRetriever, CollaborativeModel, ItemVectorStore
from promptrec.retrieval.store import make_client
from promptrec.types import History


@pytest.fixture
def retriever(tmp_path, tiny, hash_embedder):
    store = ItemVectorStore(make_client(tmp_path / "c"), hash_embedder, "items")
    store.upsert([(i.item_id, i.text(), {}) for i in tiny.catalog])
    collab = CollaborativeModel({"ease": EASE(lambda_=10.0), "itemknn": ItemKNN()}, min_support=1).fit(
        tiny.interactions)
    return CandidateRetriever(store, hash_embedder, tiny.catalog, collab,
                              {"embedding": 1.0, "ease": 1.0, "itemknn": 0.5}, pool_depth=10)


def test_candidates_never_include_history_or_exclusions(retriever, tiny):
    history = tiny.interactions.history("1")
    out = retriever.retrieve(History(items=history), depth=8, exclude=["105"])
    ids = [c.item_id for c in out]
    assert len(ids) == 8 == len(set(ids))
    assert not set(ids) & (set(history) | {"105"})
    assert [c.fused for c in out] == sorted((c.fused for c in out), reverse=True)
    assert set(out[0].scores) == {"embedding", "ease", "itemknn"}


def test_candidates_follow_the_users_genre_and_cite_history(retriever, tiny):
    history = tiny.interactions.history("1")  # a space-adventure fan
    top = retriever.retrieve(History(items=history), depth=3)
    genres = [tiny.catalog[c.item_id].fields["genres"] for c in top]
    assert genres[0] == "space, adventure" and genres.count("space, adventure") >= 2, genres
    assert all(c.evidence in history for c in top)


def test_a_request_steers_a_cold_start(retriever, tiny):
    top = retriever.retrieve(History(), depth=3, request="crime thriller")
    assert top and all("crime" in tiny.catalog[c.item_id].fields["genres"] for c in top)


def test_embedding_only_when_no_collaborative_model(tmp_path, tiny, hash_embedder):
    store = ItemVectorStore(make_client(tmp_path / "c"), hash_embedder, "items")
    store.upsert([(i.item_id, i.text(), {}) for i in tiny.catalog])
    only = CandidateRetriever(store, hash_embedder, tiny.catalog, None, {"embedding": 1.0})
    out = only.retrieve(History(items=tiny.interactions.history("2")), depth=4)
    assert len(out) == 4 and set(out[0].scores) == {"embedding"}
