"""Pieces of the learned-fusion evaluation: tiers, intervals, multi-task labels, report rows."""

import numpy as np

from promptrec.evaluation.learned import StagePools, bootstrap_interval, multitask_labels, popularity_tiers, row
from promptrec.ranking.learned import Queries


def test_popularity_tiers_split_20_30_50():
    counts = np.arange(10)[::-1]  # item i has 9 - i interactions
    tiers = popularity_tiers(counts, [f"i{n}" for n in range(10)])
    assert [tiers[f"i{n}"] for n in range(10)] == ["head"] * 2 + ["torso"] * 3 + ["tail"] * 5


def test_bootstrap_interval_holds_the_mean_and_narrows_with_users():
    rng = np.random.default_rng(0)
    small, large = rng.random(50), rng.random(5000)
    lo, hi = bootstrap_interval(small, 500, seed=0)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_interval(large, 500, seed=0)
    assert hi2 - lo2 < (hi - lo) / 3
    assert bootstrap_interval(small, 500, seed=0) == [lo, hi]  # seeded


def test_multitask_labels_grade_the_held_out_item_by_rating():
    q = Queries(np.zeros((6, 1)), np.array([0, 1, 0, 1, 0, 1.0]), np.array([0, 2, 4, 6]), ["a", "b", "c"])
    pools = StagePools(q, np.zeros(6), ["a", "b", "c"], ["head"] * 3, [4.5, 1.0, float("nan")])
    assert multitask_labels(pools).tolist() == [0, 3, 0, 1, 0, 2]


def test_row_reports_paired_difference_and_tiers():
    ranks = np.array([0.0, 5.0, np.inf, 1.0])
    base = np.array([0.0, np.inf, np.inf, 1.0])
    out = row("m", "valid", ranks, base, ["head", "tail", "tail", "torso"], 200, seed=0)
    assert out["metrics"]["R@10"] == 0.75 and out["users"] == 4
    assert np.isclose(out["diff_vs_hand_N@10"], 1 / np.log2(7) / 4)
    assert out["N@10_by_tier"]["head"] == 1.0 and out["users_by_tier"] == {"head": 1, "torso": 1, "tail": 2}


def test_concat_keeps_each_query_rows_and_numbers_the_folds():
    from promptrec.evaluation.learned import concat

    def pools(sizes, tag):
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        X = np.arange(offsets[-1], dtype=float)[:, None] + (100 if tag == "b" else 0)
        users = [f"{tag}{n}" for n in range(len(sizes))]
        return StagePools(Queries(X, np.zeros(offsets[-1]), offsets, users), X[:, 0], users, ["head"] * len(sizes),
                          [1.0] * len(sizes))

    joined = concat([pools([2, 3], "a"), pools([4, 1], "b")])
    q = joined.queries
    assert q.offsets.tolist() == [0, 2, 5, 9, 10] and joined.fold == [0, 0, 1, 1]
    assert q.X[q.offsets[2]:q.offsets[3], 0].tolist() == [100, 101, 102, 103]


def test_pools_round_trip_through_npz(tmp_path):
    from promptrec.evaluation.learned import load_pools, save_pools

    q = Queries(np.array([[1.0], [np.nan]]), np.array([0, 1.0]), np.array([0, 2]), ["u1"])
    save_pools(tmp_path / "p.npz", StagePools(q, np.array([0.5, 0.1]), ["u1"], ["tail"], [float("nan")], [0]))
    back = load_pools(tmp_path / "p.npz")
    assert back.users == ["u1"] and back.tiers == ["tail"] and np.isnan(back.queries.X[1, 0])
    assert load_pools(tmp_path / "missing.npz") is None


def test_hand_scores_in_a_deeper_pool_are_the_products_at_its_own_depth():
    from promptrec.evaluation.learned import hand_scores
    from promptrec.evaluation.product import restrict_pool
    from promptrec.retrieval import fuse

    rng = np.random.default_rng(3)
    items = [f"i{n}" for n in range(30)]
    sources = {"classic": rng.random(30), "embedding": rng.random(30)}
    weights = {"classic": 1.0, "embedding": 0.1}
    deep, deep_sources = restrict_pool(items, sources, weights, 12)
    shallow, shallow_sources = restrict_pool(items, sources, weights, 4)
    got = hand_scores(deep, deep_sources, items, sources, weights, 4)
    want = dict(zip(shallow, fuse(shallow_sources, weights)[0]))
    assert len(deep) > len(shallow) and set(shallow) <= set(deep)
    assert all(np.isclose(got[n], want[i]) if i in want else got[n] == -np.inf for n, i in enumerate(deep))
    # the same order at the top: the deeper pool does not change what the hand-weighted fusion shows
    top = [deep[n] for n in np.argsort(-got, kind="stable")[:len(shallow)]]
    assert top == sorted(shallow, key=lambda i: -want[i])
    assert np.allclose(hand_scores(deep, deep_sources, items, sources, weights, None), fuse(deep_sources, weights)[0])


def test_load_knowledge_finds_each_users_model_profile_made_from_the_expected_history(tmp_path):
    from promptrec.evaluation.knowledge import eval_profile_store
    from promptrec.evaluation.learned import load_knowledge
    from promptrec.knowledge.profile_store import ProfileRecord, history_key
    from promptrec.types import ProfileResult, UserProfile

    class State:
        def features_for(self, model_id, style):
            return tmp_path / "features.closed.jsonl"

    model = "m.gguf@abc"
    store = eval_profile_store(tmp_path, model)
    liked = UserProfile(likes=["heists"], dislikes=[], recent_interests=[], summary="Likes heists.")
    histories = {"1": ["a", "b"], "2": ["c"], "3": ["d"]}
    for user, history, source in (("1", ["a", "b"], "llm"), ("2", ["x"], "llm"), ("3", ["d"], "fallback")):
        store.append(ProfileRecord(user_id=user, result=ProfileResult(profile=liked, source=source, history_used=1),
                                   history_key=history_key(history), model_id=model, template_hash="t"))
    _, profiles = load_knowledge(State(), tmp_path, model, histories)
    assert profiles == {"1": liked}  # user 2's profile read another history; user 3's is the evidence fallback
    _, unchecked = load_knowledge(State(), tmp_path, model)
    assert set(unchecked) == {"1", "2"}


def test_load_knowledge_reads_profiles_of_another_model_when_asked(tmp_path):
    from promptrec.evaluation.knowledge import eval_profile_store
    from promptrec.evaluation.learned import load_knowledge
    from promptrec.knowledge.profile_store import ProfileRecord, history_key
    from promptrec.types import ProfileResult, UserProfile

    class State:
        def features_for(self, model_id, style):
            return tmp_path / f"{model_id}.closed.jsonl"

    liked = UserProfile(likes=["heists"], dislikes=[], recent_interests=[], summary="Likes heists.")
    eval_profile_store(tmp_path, "big@1").append(ProfileRecord(
        user_id="1", result=ProfileResult(profile=liked, source="llm", history_used=1),
        history_key=history_key(["a"]), model_id="big@1", template_hash="t"))
    assert load_knowledge(State(), tmp_path, "small@1", {"1": ["a"]})[1] == {}
    assert load_knowledge(State(), tmp_path, "small@1", {"1": ["a"]}, "big@1")[1] == {"1": liked}


def test_pools_keep_items_targets_and_users_and_old_files_are_rebuilt(tmp_path):
    from promptrec.evaluation.learned import load_pools, save_pools

    q = Queries(np.zeros((3, 1)), np.array([0, 1.0, 1.0]), np.array([0, 2, 3]), ["u1", "u2"])
    pools = StagePools(q, np.zeros(3), ["u1", "u2"], ["tail", "head"], [4.0, 2.0], [0, 0],
                       items=np.array([5, 7, 2]), targets=[7, 2], user_index=[0, 1])
    save_pools(tmp_path / "p.npz", pools)
    back = load_pools(tmp_path / "p.npz")
    assert back.items.tolist() == [5, 7, 2] and back.targets == [7, 2] and back.user_index == [0, 1]
    np.savez(tmp_path / "old.npz", X=q.X, labels=q.labels, offsets=q.offsets, hand=np.zeros(3),
             users=np.array(["u1", "u2"]), tiers=np.array(["tail", "head"]), ratings=np.zeros(2), fold=np.zeros(2))
    assert load_pools(tmp_path / "old.npz") is None  # saved before items were kept: built again


def test_beyond_row_reads_the_top_lists_popularity_and_groups():
    from promptrec.evaluation.beyond import GroupContext
    from promptrec.evaluation.learned import beyond_row, top_lists

    popularity = np.array([100.0, 50, 20, 5, 3, 2, 1, 1, 1, 1, 1, 1])  # item 0 most popular
    context = GroupContext.for_stage(popularity, np.array([3.0, 10, 30]), seed=0)
    # three users, pools of all 12 items; targets 0 (head), 6 and 11 (tail)
    items = np.tile(np.arange(12), 3)
    labels = np.concatenate([np.eye(12)[t] for t in (0, 6, 11)])
    pools = StagePools(Queries(np.zeros((36, 1)), labels, np.array([0, 12, 24, 36]), ["a", "b", "c"]), np.zeros(36),
                       ["a", "b", "c"], ["head", "tail", "tail"], [4.0] * 3, [0] * 3, items=items,
                       targets=[0, 6, 11], user_index=[0, 1, 2])
    popular_first = -items.astype(float)          # item 0 ranked first for everyone
    obscure_first = items.astype(float)           # item 11 ranked first
    assert top_lists(pools, popular_first)[0].tolist() == list(range(10))
    pop_row = beyond_row("popular", "test", pools, popular_first, context)
    rare_row = beyond_row("obscure", "test", pools, obscure_first, context)
    assert pop_row["metrics"]["avg_pop"] > rare_row["metrics"]["avg_pop"]
    assert pop_row["metrics"]["long_tail_share"] < rare_row["metrics"]["long_tail_share"]
    # user a's head target is first under popular_first; the tail targets 6 and 11 rank 6th and outside the top 10
    assert pop_row["groups"]["target_tier"]["head"]["N@10"] == 1.0
    assert np.isclose(pop_row["metrics"]["R@10"], 2 / 3)
    assert set(pop_row["groups"]["activity"]) == {"light", "medium", "heavy"}
    assert "gini" in pop_row["intervals"] and pop_row["split"] == "test"
    only_b = beyond_row("popular", "test", pools, popular_first, context, queries=[1])
    assert only_b["metrics"]["n_users"] == 1 and only_b["metrics"]["R@10"] == 1.0


def test_interaction_tiers_are_protocol_a_tiers():
    from promptrec.evaluation.beyond import popularity_tiers as beyond_tiers
    from promptrec.evaluation.learned import interaction_tiers

    counts = np.array([50, 20, 10, 5, 5, 4, 3, 2, 1, 0])
    items = [f"i{n}" for n in range(10)]
    tiers = interaction_tiers(counts, items)
    assert [tiers[i] for i in items] == [("head", "torso", "tail")[c] for c in beyond_tiers(counts)]
    assert tiers["i0"] == "head" and tiers["i9"] == "tail" and tiers["i1"] == "torso"
