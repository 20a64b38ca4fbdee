import numpy as np
import pytest

from promptrec.retrieval import ItemVectorStore, StoreMismatch
from promptrec.retrieval.store import make_client
from promptrec.testing import HashEmbedder


@pytest.fixture
def client(tmp_path):
    return make_client(tmp_path / "chroma")


def records(catalog):
    return [(item.item_id, item.text(), {"title": item.title}) for item in catalog]


def test_upsert_query_and_exclude(client, tiny, hash_embedder):
    store = ItemVectorStore(client, hash_embedder, "items")
    assert store.upsert(records(tiny.catalog)) == len(tiny.catalog) == store.count()
    query = hash_embedder.embed(["romantic comedy"])[0]
    hits = store.query(query, 5)
    assert all(tiny.catalog[i].fields["genres"] == "romantic, comedy" for i, _ in hits)
    assert hits[0][1] >= hits[-1][1]
    banned = {hits[0][0], hits[1][0]}
    assert not banned & {i for i, _ in store.query(query, 5, exclude=banned)}


def test_unchanged_text_is_not_embedded_again(client, tiny, hash_embedder):
    store = ItemVectorStore(client, hash_embedder, "items")
    store.upsert(records(tiny.catalog))
    changed = records(tiny.catalog)
    changed[0] = (changed[0][0], changed[0][1] + ". Themes: new", changed[0][2])
    assert store.upsert(changed) == 1


def test_vectors_survive_reopening(tmp_path, tiny, hash_embedder):
    ItemVectorStore(make_client(tmp_path / "c"), hash_embedder, "items").upsert(records(tiny.catalog))
    store = ItemVectorStore(make_client(tmp_path / "c"), hash_embedder, "items")
    found = store.vectors([item.item_id for item in tiny.catalog])  # reopened without Chroma rebuilding our embedder
    assert store.count() == len(found) == len(tiny.catalog)
    vectors = np.stack(list(found.values()))
    assert vectors.shape == (len(found), hash_embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_other_embedder_fails_fast_with_a_clear_message(client, tiny, hash_embedder):
    ItemVectorStore(client, hash_embedder, "items").upsert(records(tiny.catalog))
    with pytest.raises(StoreMismatch) as err:
        ItemVectorStore(client, HashEmbedder(dimension=32), "items")
    assert "hash-bow-64" in str(err.value) and "hash-bow-32" in str(err.value) and "--rebuild" in str(err.value)


def test_query_is_exact_with_ties_by_id_and_sees_new_vectors(client, tmp_path):
    """Up to ``exact_max_items`` a query is the exact cosine order (Chroma's HNSW answers differently from
    process to process); above it, Chroma's index answers."""
    rng = np.random.default_rng(0)

    class Fixed:
        name, dimension = "fixed", 16

        def __init__(self):
            self.table = {}

        def embed(self, texts):
            return np.stack([self.table[t] for t in texts]).astype(np.float32)

    emb = Fixed()
    vectors = {f"i{n:03d}": rng.standard_normal(16) for n in range(300)}
    vectors["i998"] = vectors["i999"] = np.eye(16)[0] * 3  # two identical items: a tie
    emb.table = {f"text {i}": v for i, v in vectors.items()}
    store = ItemVectorStore(client, emb, "exact")
    store.upsert([(i, f"text {i}", {}) for i in sorted(vectors, reverse=True)])
    q = rng.standard_normal(16)
    unit = {i: v / np.linalg.norm(v) for i, v in vectors.items()}
    exact = sorted(unit, key=lambda i: (-float(unit[i] @ (q / np.linalg.norm(q))), i))
    hits = store.query(q, 50)
    assert [i for i, _ in hits] == exact[:50]
    assert np.isclose(hits[0][1], unit[exact[0]] @ (q / np.linalg.norm(q)), atol=1e-5)
    assert [i for i, _ in store.query(np.eye(16)[0], 2)] == ["i998", "i999"]  # tie: by id
    emb.table["text new"] = np.eye(16)[0] * 5
    store.upsert([("i000", "text new", {})])  # a changed vector is seen by the next query
    assert store.query(np.eye(16)[0], 1)[0][0] == "i000"
    reopened = ItemVectorStore(make_client(tmp_path / "chroma"), emb, "exact")  # another process, same answer
    assert reopened.query(q, 50) == store.query(q, 50)
    approx = ItemVectorStore(client, emb, "exact", exact_max_items=10)  # above the limit: Chroma's own index
    assert len(approx.query(q, 20)) == 20
