import numpy as np
import pytest
import scipy.sparse as sp

from promptrec.knowledge.ridge import MapFileError, ridge
from promptrec.knowledge.student import DistilledStudent, StudentConfig
from promptrec.knowledge.transfer import TransferConfig, TransferMap, svd_item_factors


def test_ridge_recovers_a_linear_map_with_an_intercept():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5))
    true = rng.standard_normal((5, 3))
    y = x @ true + np.array([1.0, -2.0, 0.5])
    w, x_mean, y_mean = ridge(x, y, 1e-6)
    assert np.allclose((x - x_mean) @ w + y_mean, y, atol=1e-5)
    with pytest.raises(ValueError):
        ridge(x, y, 0.0)


def two_taste_world(n_users=40, per_group=12, seed=0):
    """Two groups of items with distinct text; users consume one group only."""
    rng = np.random.default_rng(seed)
    n_items = 2 * per_group
    group = np.repeat([0, 1], per_group)
    centres = np.eye(8)[:2] * 3
    text = centres[group] + 0.3 * rng.standard_normal((n_items, 8))
    rows, cols = [], []
    for u in range(n_users):
        g = u % 2
        chosen = rng.choice(np.flatnonzero(group == g), size=6, replace=False)
        rows += [u] * 6
        cols += chosen.tolist()
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    return matrix, text, group


@pytest.mark.parametrize("config", [TransferConfig(space="svd", factors=4, lambda_=1.0),
                                    TransferConfig(space="ease", ease_lambda=5.0, lambda_=1.0)])
def test_a_new_item_is_scored_by_its_text_for_the_users_who_like_its_kind(config):
    matrix, text, group = two_taste_world()
    warm = np.r_[0:10, 12:22]  # items 10, 11 (group 0) and 22, 23 (group 1) are new
    fitted = TransferMap.fit(matrix[:, warm], text[warm], [str(i) for i in warm], config)
    fan_of_0 = fitted.user_vector([str(i) for i in range(0, 6)])
    fan_of_1 = fitted.user_vector([str(i) for i in range(12, 18)])
    new = text[[10, 11, 22, 23]]
    s0, s1 = fitted.score(fan_of_0, new), fitted.score(fan_of_1, new)
    assert min(s0[:2]) > max(s0[2:]) and min(s1[2:]) > max(s1[:2])
    assert fitted.warm_scores(fan_of_0).shape == (len(warm),)


def test_a_saved_map_scores_the_same_and_a_tampered_one_is_refused(tmp_path):
    matrix, text, _ = two_taste_world()
    for config in (TransferConfig(factors=4), TransferConfig(space="ease", ease_lambda=5.0)):
        fitted = TransferMap.fit(matrix, text, [str(i) for i in range(24)], config, meta={"note": "x"})
        path = tmp_path / f"map-{config.space}"
        fitted.save(path)
        loaded = TransferMap.load(path)
        user = fitted.user_vector(["1", "2"])
        assert np.allclose(loaded.score(user, text[:3]), fitted.score(user, text[:3]))
        assert np.allclose(loaded.warm_scores(user), fitted.warm_scores(user), atol=1e-4)
        assert loaded.items == fitted.items and loaded.meta == {"note": "x"} and loaded.config == config
    npz = tmp_path / "map-svd.npz"
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(MapFileError):
        TransferMap.load(tmp_path / "map-svd")
    with pytest.raises(MapFileError):
        TransferMap.load(tmp_path / "missing")


def test_svd_factors_are_deterministic_and_orthonormal():
    matrix, _, _ = two_taste_world()
    a, b = svd_item_factors(matrix, 5), svd_item_factors(matrix, 5)
    assert np.array_equal(a, b) and np.allclose(a.T @ a, np.eye(5), atol=1e-8)
    assert (a.sum(axis=0) >= 0).all()


def test_the_student_learns_the_raw_to_feature_map_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    raw = rng.standard_normal((300, 6))
    mix = np.eye(6) + 0.5 * rng.standard_normal((6, 6))
    featured = raw @ mix
    featured /= np.linalg.norm(featured, axis=1, keepdims=True)
    student = DistilledStudent.fit(raw[:250], featured[:250], StudentConfig(lambda_=1e-3))
    predicted = student.predict(raw[250:])
    cosine = (predicted * featured[250:]).sum(axis=1)
    assert cosine.mean() > 0.95 and np.allclose(np.linalg.norm(predicted, axis=1), 1.0, atol=1e-5)
    student.save(tmp_path / "student")
    assert np.allclose(DistilledStudent.load(tmp_path / "student").predict(raw[250:]), predicted)
    # a huge penalty on the residual falls back to (the unit) raw vector
    lazy = DistilledStudent.fit(raw[:250], featured[:250], StudentConfig(lambda_=1e9))
    unit_raw = raw[250:] / np.linalg.norm(raw[250:], axis=1, keepdims=True)
    assert (lazy.predict(raw[250:]) * unit_raw).sum(axis=1).mean() > 0.9
