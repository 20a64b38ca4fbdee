import numpy as np

from promptrec.retrieval import MiniLMEmbedder


def test_minilm_runs_offline_and_ranks_meaning():
    embedder = MiniLMEmbedder(batch_size=2)
    vectors = embedder.embed(["A space adventure with aliens", "Science fiction voyage to the stars",
                              "A quiet romantic comedy in Paris"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def test_padding_does_not_change_a_vector():
    embedder = MiniLMEmbedder(batch_size=8)
    alone = embedder.embed(["short text"])[0]
    batched = embedder.embed(["short text", "a much longer text " * 10])[0]
    assert np.allclose(alone, batched, atol=1e-4)
