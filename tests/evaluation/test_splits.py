import numpy as np
import pandas as pd
import pytest

from promptrec.evaluation.splits import (
    k_core,
    leave_last_out,
    protocol_a_split,
    sampled_candidates,
    truncate_last,
)

def frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


@pytest.fixture(scope="module")
def movielens_split(movielens):
    """Protocol A on the real ml-latest-small, loaded by the product's loader (PROMPTREC_DATA_DIR)."""
    return protocol_a_split(movielens.interactions.frame)


def test_k_core_is_iterative():
    # dropping c (1 user) drops u3, which drops d, which drops u4, then x, then u5
    pairs = {"u1": "ab", "u2": "ab", "u3": "cd", "u4": "dx", "u5": "xa"}
    rows = [(u, i, 0, 1.0) for u, items in pairs.items() for i in items]
    out = k_core(frame(rows), k=2)
    assert sorted(zip(out["user_id"], out["item_id"], strict=True)) == [
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "a"),
        ("u2", "b"),
    ]


def test_k_core_keeps_a_dense_block_and_drops_the_rest():
    rows = [(u, i, 0, 1.0) for u in "ABC" for i in "xyz"] + [("D", "x", 0, 1.0), ("A", "w", 0, 1.0)]
    out = k_core(frame(rows), k=3)
    assert set(out["user_id"]) == set("ABC")
    assert set(out["item_id"]) == set("xyz")
    assert len(out) == 9


def test_leave_last_out_orders_by_time_then_numeric_id():
    rows = [
        ("1", "10", 100, 4.0),
        ("1", "9", 100, 3.0),  # same second: 9 before 10 numerically ("10" < "9" as text)
        ("1", "2", 50, 5.0),
        ("1", "100", 200, np.nan),
    ]
    split = leave_last_out(frame(rows))
    assert split.items == ["2", "9", "10", "100"]
    ids = lambda idx: [split.items[i] for i in np.atleast_1d(idx)]  # noqa: E731
    assert ids(split.train[0]) == ["2", "9"]
    assert ids(split.valid_target[0]) == ["10"]
    assert ids(split.test_target[0]) == ["100"]
    assert split.train_times[0].tolist() == [50, 100]
    assert split.valid_time.tolist() == [100] and split.test_time.tolist() == [200]


def test_leave_last_out_ties_are_lexicographic_for_text_ids():
    rows = [("u", "b", 1, 1.0), ("u", "B", 1, 1.0), ("u", "a", 1, 1.0)]
    split = leave_last_out(frame(rows))
    assert split.items == ["B", "a", "b"]
    assert split.test_target.tolist() == [split.item_index["b"]]


def test_leave_last_out_rejects_short_users():
    with pytest.raises(ValueError, match="needs 3"):
        leave_last_out(frame([("u", "a", 1, 1.0), ("u", "b", 2, 1.0)]))


def test_history_matrix_and_sequences_by_stage():
    rows = [("u", str(i), i, 1.0) for i in range(5)] + [
        ("v", str(i), 10 + i, 1.0) for i in (4, 3, 2)
    ]
    split = leave_last_out(frame(rows))
    assert split.history(0, "valid").tolist() == [0, 1, 2]
    assert split.history(0, "test").tolist() == [0, 1, 2, 3]
    assert split.history_times(0, "test").tolist() == [0, 1, 2, 3]
    valid = split.fit_matrix("valid").toarray()
    test = split.fit_matrix("test").toarray()
    assert valid.tolist() == [[1, 1, 1, 0, 0], [0, 0, 1, 0, 0]]  # v rated 4, 3, 2 backwards
    assert test.tolist() == [[1, 1, 1, 1, 0], [0, 0, 1, 1, 0]]
    histories, times = split.sequences("test")
    assert [h.tolist() for h in histories] == [[0, 1, 2, 3], [2, 3]]
    assert [t.tolist() for t in times] == [[0, 1, 2, 3], [12, 13]]
    assert split.test_target.tolist() == [4, 4]
    with pytest.raises(ValueError):
        split.history(0, "train")


@pytest.mark.integration
def test_protocol_a_sizes_on_ml_latest_small(movielens_split):
    s = movielens_split
    assert (s.n_users, s.n_items, s.n_interactions) == (610, 3650, 90274)
    assert s.fit_matrix("test").nnz == 90274 - 610
    # every user: target times are not before the history
    assert all(t[-1] <= v for t, v in zip(s.train_times, s.valid_time, strict=True))
    assert np.all(s.valid_time <= s.test_time)


@pytest.mark.integration
def test_the_product_loader_gives_the_split_its_frame(movielens):
    df = movielens.interactions.frame
    assert list(df.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert len(df) == 100_836
    assert isinstance(df["user_id"].iloc[0], str) and isinstance(df["item_id"].iloc[0], str)
    assert df["timestamp"].dtype == np.int64


@pytest.mark.integration
def test_sampled_candidates_are_unseen_distinct_and_seeded(movielens_split):
    s = movielens_split
    cands = sampled_candidates(s, n_negatives=19, seed=0)
    assert cands.shape == (610, 20)
    assert np.array_equal(cands[:, 0], s.test_target)
    for u in range(s.n_users):
        seen = set(s.train[u]) | {s.valid_target[u], s.test_target[u]}
        assert len(set(cands[u])) == 20
        assert not seen & set(cands[u, 1:])
    assert np.array_equal(cands, sampled_candidates(s, seed=0))
    assert not np.array_equal(cands, sampled_candidates(s, seed=1))
    valid = sampled_candidates(s, n_negatives=5, stage="valid")
    assert valid.shape == (610, 6) and np.array_equal(valid[:, 0], s.valid_target)


@pytest.mark.integration
def test_truncate_last_shifts_targets_back(movielens_split):
    s = movielens_split
    one = truncate_last(s, 1)
    assert one.n_users == 610
    assert np.array_equal(one.test_target, s.valid_target)
    assert np.array_equal(one.valid_target, [t[-1] for t in s.train])
    # its test stage is exactly the original validation stage
    assert all(
        np.array_equal(a, b)
        for a, b in zip(one.sequences("test")[0], s.sequences("valid")[0], strict=True)
    )
    assert (one.fit_matrix("test") != s.fit_matrix("valid")).nnz == 0
    assert truncate_last(s, 0).n_interactions == s.n_interactions
