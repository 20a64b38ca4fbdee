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
