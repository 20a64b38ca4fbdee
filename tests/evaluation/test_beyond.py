"""Beyond-accuracy figures and intervals over users, on hand-made ranks, lists and popularity."""

import numpy as np
import pytest

from promptrec.data import load_folder
from promptrec.evaluation.beyond import (GroupContext, activity_groups, jackknife_interval, bootstrap_indices, describe,
                                         exposure_gini, gini, popularity_tiers, split_context)
from promptrec.evaluation.metrics import evaluate_rankings
from promptrec.evaluation.splits import protocol_a_split
from promptrec.testing import with_users, write_dataset_folder


def test_tiers_split_interactions_20_60_20():
    counts = np.array([50, 30, 10, 5, 3, 2, 0])  # 100 interactions
    tiers = popularity_tiers(counts)
    # head: the most popular items holding the first 20% (item 0 crosses it); tail: the least popular
    # items holding at most 20% together (items 2..6: 10+5+3+2+0 = 20); torso: the rest
    assert tiers.tolist() == [0, 1, 2, 2, 2, 2, 2]
    assert popularity_tiers(np.array([10, 10, 10, 10, 10])).tolist() == [0, 1, 1, 1, 2]  # ties: lower index first
    assert popularity_tiers(np.zeros(3)).tolist() == [2, 2, 2]


def test_gini_of_exposure():
    assert gini(np.array([3, 3, 3, 3])) == 0.0
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(0.75)  # (n - 1) / n: one item takes every slot
    # the catalog counts: items never shown are zeros
    assert exposure_gini([np.array([0, 1]), np.array([0, 1])], n_items=2) == 0.0
    assert exposure_gini([np.array([0, 1]), np.array([0, 1])], n_items=4) == pytest.approx(0.5)


def test_activity_terciles():
    groups, cuts = activity_groups(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9]))
    assert cuts == [pytest.approx(11 / 3), pytest.approx(19 / 3)]
    assert groups.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def context(seed=0, attributes=None):
    popularity = np.array([50, 30, 10, 5, 3, 2, 0], dtype=float)  # tiers: 0 head, 1 torso, 2..6 tail
    lengths = np.array([1, 2, 3, 10, 20, 30], dtype=float)
    return GroupContext.for_stage(popularity, lengths, seed, [f"u{i}" for i in range(6)], attributes)


def test_describe_matches_the_means_and_groups_by_tier_activity_and_attribute():
    ranks = np.array([0, 3, np.inf, 1, 12, 0])
    targets = [0, 1, 2, 3, 4, 5]
    lists = [np.array([0, 1]), np.array([0, 2]), np.array([0, 1]), np.array([3, 4]), np.array([0, 1]), np.array([5, 6])]
    attrs = {f"u{i}": {"gender": "F" if i < 2 else "M"} for i in range(6)}
    out = describe(ranks, targets, lists, context(attributes=attrs))
    plain = evaluate_rankings(ranks)
    for name in ("N@10", "R@10", "MRR@10", "R@1", "N@20"):
        assert out["metrics"][name] == pytest.approx(plain[name])
    metrics = out["metrics"]
    assert metrics["tail_share"] == pytest.approx(5 / 12) and metrics["long_tail_share"] == pytest.approx(8 / 12)
    assert metrics["coverage"] == pytest.approx(7 / 7)
    assert metrics["avg_pop"] == pytest.approx(np.mean([40, 30, 40, 4, 40, 1]))
    tiers = out["groups"]["target_tier"]
    assert {k: v["users"] for k, v in tiers.items()} == {"head": 1, "torso": 1, "tail": 4}
    assert tiers["head"]["N@10"] == 1.0 and tiers["torso"]["N@10"] == pytest.approx(1 / np.log2(5))
    assert tiers["tail"]["R@10"] == pytest.approx(2 / 4)  # ranks inf, 1, 12, 0 -> two hits
    activity = out["groups"]["activity"]
    assert {k: v["users"] for k, v in activity.items()} == {"light": 2, "medium": 2, "heavy": 2}
    gender = out["groups"]["attribute:gender"]
    assert gender["F"]["users"] == 2 and gender["M"]["users"] == 4
    assert gender["F"]["N@10"] == pytest.approx((1 + 1 / np.log2(5)) / 2)


def test_intervals_hold_the_figure_are_seeded_and_narrow_with_more_users():
    rng = np.random.default_rng(1)
    ranks = rng.integers(0, 40, size=400).astype(float)
    targets = rng.integers(0, 7, size=400)
    lists = [rng.choice(7, size=3, replace=False) for _ in range(400)]
    ctx = GroupContext.for_stage(np.array([50, 30, 10, 5, 3, 2, 0.0]), rng.integers(1, 50, 400).astype(float), 0)
    out = describe(ranks, targets, lists, ctx)
    for name, (low, high) in out["intervals"].items():
        assert low <= out["metrics"][name] + 1e-9 <= high + 2e-9, name
        assert low < high or name == "coverage", name  # everything here varies across users
    again = describe(ranks, targets, lists, ctx)
    assert again["intervals"] == out["intervals"]  # seeded
    ctx.seed = 7
    assert describe(ranks, targets, lists, ctx)["intervals"]["N@10"] != out["intervals"]["N@10"]
    few = describe(ranks[:40], targets[:40], lists[:40], ctx)
    width = lambda o: o["intervals"]["N@10"][1] - o["intervals"]["N@10"][0]  # noqa: E731
    assert width(few) > width(out)


def test_set_statistics_get_a_jackknife_interval_around_the_estimate():
    assert jackknife_interval(0.5, np.array([0.5, 0.5, 0.5])) == [0.5, 0.5]
    low, high = jackknife_interval(0.2, np.array([0.1, 0.3]))  # SE = sqrt(1/2 * 0.02) = 0.1
    assert low == pytest.approx(0.2 - 0.195996, abs=1e-5) and high == pytest.approx(0.2 + 0.195996, abs=1e-5)
    # coverage: a user who alone shows an item widens it; Gini's estimate stays inside despite resampling bias
    ctx = GroupContext.for_stage(np.arange(7, dtype=float), np.arange(4, dtype=float), 0)
    out = describe([0, 0, 0, 0], [0, 0, 0, 0], [np.array([0, 1])] * 3 + [np.array([5, 6])], ctx)
    c_low, c_high = out["intervals"]["coverage"]
    assert out["metrics"]["coverage"] == pytest.approx(4 / 7) and c_low < 4 / 7 < c_high


def test_bootstrap_resamples_depend_on_the_seed_only():
    assert np.array_equal(bootstrap_indices(5, 3), bootstrap_indices(5, 3))
    assert not np.array_equal(bootstrap_indices(5, 3), bootstrap_indices(5, 4))
    assert bootstrap_indices(0, 1).shape == (1000, 0)


def test_describe_rejects_misaligned_inputs():
    with pytest.raises(ValueError, match="3 ranks but 2 users"):
        describe([0, 1, 2], [0, 1, 2], None, context(), users=[0, 1])


def test_a_users_file_gives_demographic_groups_on_a_dataset_folder(tmp_path, tiny):
    folder = tmp_path / "shop"
    write_dataset_folder(with_users(tiny, seed=3), folder)
    dataset = load_folder(folder)
    assert dataset.users and set(dataset.users[tiny.interactions.users[0]]) == {"gender", "age"}
    split = protocol_a_split(dataset.interactions.frame, k=2)
    ctx = split_context(split, "test", 0, dataset.users)
    ranks = np.arange(split.n_users, dtype=float) % 15
    out = describe(ranks, split.targets("test"), None, ctx)
    ages = out["groups"]["attribute:age"]
    assert set(ages) <= {"18-24", "25-34", "35+"} and sum(g["users"] for g in ages.values()) == split.n_users
    expected = [dataset.users[u]["age"] == "35+" for u in split.users]
    hits = (ranks < 10).astype(float)
    assert ages["35+"]["R@10"] == pytest.approx(hits[np.array(expected)].mean())
    assert ctx.describe_groups()["attributes"] == ["age", "gender"]
    # without a users file: no attribute groups
    plain = describe(ranks, split.targets("test"), None, split_context(split, "test", 0, None))
    assert not any(k.startswith("attribute:") for k in plain["groups"])
