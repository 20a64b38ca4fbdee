"""The knowledge model's own item vectors, read from the real smallest GGUF (llama.cpp embedding mode)."""

from __future__ import annotations

import numpy as np
import pytest

from promptrec.knowledge.model_vectors import ModelVectors, centred


def test_centred_removes_the_fit_rows_mean_and_renormalises():
    x = np.array([[10.0, 1.0], [10.0, -1.0], [10.0, 3.0]])
    out = centred(x, fit_rows=[0, 1])  # mean of the fit rows: (10, 0)
    assert np.allclose(out, [[0, 1], [0, -1], [0, 1]])
    assert np.allclose(np.linalg.norm(centred(x + [[0, 0], [1, 0], [0, 0]]), axis=1), 1.0)
    # a mean over other rows moves the result: the fit rows decide it
    assert not np.allclose(centred(x, fit_rows=[2]), out)


@pytest.mark.integration
def test_model_vectors_are_unit_deterministic_and_tell_texts_apart(tmp_path):
    vectors = ModelVectors("small", tmp_path / "models", threads=1, batch_size=2)
    assert vectors.name.startswith("llm-mean:") and vectors.model_id in vectors.name
    texts = ["Toy Story (1995). genres: Adventure, Animation, Children", "Heat (1995). genres: Action, Crime",
             "Toy Story (1995). genres: Adventure, Animation, Children", ""]
    out = vectors.embed(texts)
    assert out.shape == (4, vectors.dimension) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(out[0], out[2], atol=1e-5)  # batched across calls, the same text reads the same
    assert not np.allclose(out[0], out[1], atol=1e-3)
    again = vectors.embed(texts[:1])
    assert np.allclose(again[0], out[0], atol=1e-4)
    assert vectors.embed([]).shape == (0, vectors.dimension)


def test_a_file_that_is_not_a_model_is_a_model_error(tmp_path):
    from promptrec.errors import ModelError

    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF but not really" * 100)
    with pytest.raises(ModelError, match="could not load"):
        ModelVectors(str(bogus), tmp_path / "models", threads=1)


def test_cached_model_vectors_without_a_file_is_a_one_line_model_error(tmp_path):
    from promptrec.errors import ModelError
    from promptrec.knowledge.model_vectors import CachedModelVectors

    with pytest.raises(ModelError, match="--model-vectors") as err:
        CachedModelVectors("llm-mean:x.gguf@0", tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.integration
def test_the_model_is_loaded_only_while_a_catalog_title_is_not_cached(tmp_path):
    from promptrec.knowledge.model_vectors import CachedModelVectors, model_vector_cache, model_vector_map
    from promptrec.testing import tiny_dataset

    items = list(tiny_dataset(n_users=5, items_per_genre=2).catalog)
    first = model_vector_cache("small", tmp_path / "models", tmp_path / "vectors", items[:-1], threads=1)
    assert isinstance(first.embedder, ModelVectors)
    read = model_vector_map(items[:-1], first)
    again = model_vector_cache("small", tmp_path / "models", tmp_path / "vectors", items[:-1], threads=1)
    assert isinstance(again.embedder, CachedModelVectors) and again.embedder.name == first.embedder.name
    cached = model_vector_map(items[:-1], again)
    assert all(np.allclose(read[i], cached[i]) for i in read)
    # a title never read: the model is loaded to read it
    assert isinstance(model_vector_cache("small", tmp_path / "models", tmp_path / "vectors", items, threads=1).embedder,
                      ModelVectors)


def test_an_unknown_model_is_named_as_the_model_vectors_model(tmp_path):
    from promptrec.errors import ModelError

    with pytest.raises(ModelError, match="no model 'bogus' to read item vectors with") as err:
        ModelVectors("bogus", tmp_path / "models", threads=1)
    assert "PROMPTREC_LLM__MODEL" not in str(err.value) and "\n" not in str(err.value)
