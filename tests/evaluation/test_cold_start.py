import numpy as np
import pytest

from promptrec.data import Item
from promptrec.evaluation.cold_start import (cold_item_tasks, cold_texts, knn_scores, multi_target_metrics,
                                             task_metrics, transfer_scores)
from promptrec.evaluation.cold_users import cold_user_folds, cold_user_metrics
from promptrec.evaluation.cold_rows import knn_row
from promptrec.evaluation.intervals import bootstrap_interval, paired_difference
from promptrec.evaluation.splits import protocol_a_split
from promptrec.knowledge.transfer import TransferConfig
from promptrec.testing import tiny_dataset


def test_multi_target_metrics_exact_values():
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    # targets at ranks 1 and 3 (0-based), k = 2: one hit of min(2, 2) -> R = 0.5
    out = multi_target_metrics(scores, [np.array([1, 3])], np.arange(5), ks=(2, 4))
    assert out["R@2"][0] == pytest.approx(0.5)
    assert out["N@2"][0] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert out["R@4"][0] == pytest.approx(1.0)
    assert out["N@4"][0] == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3)))
    # candidates and exclusions: item 0 not a candidate, item 1 excluded -> item 3 is first
    out = multi_target_metrics(scores, [np.array([3])], np.array([1, 2, 3, 4]), exclude=[np.array([1, 2])], ks=(1,))
    assert out["N@1"][0] == 1.0


def test_bootstrap_intervals():
    values = np.r_[np.zeros(50), np.ones(50)]
    cell = bootstrap_interval(values, 500, seed=1)
    assert cell["lo"] < 0.5 < cell["hi"] and cell["mean"] == 0.5 and cell["n"] == 100
    assert bootstrap_interval(values, 500, seed=1) == cell
    same = paired_difference(values, values)
    assert same["mean"] == same["lo"] == same["hi"] == 0.0


@pytest.fixture(scope="module")
def split():
    data = tiny_dataset(n_users=60, items_per_genre=10)
    return protocol_a_split(data.interactions.frame, k=2), data


def test_cold_item_tasks_hide_every_interaction_of_new_items(split):
    split, _ = split
    valid, test = cold_item_tasks(split, 0.2, seed=3)
    assert len(test.new) == len(valid.new) == round(0.2 * split.n_items)
    assert not set(test.new) & set(valid.new)
    assert test.matrix[:, test.new].nnz == 0 and valid.matrix[:, valid.new].nnz == 0
    assert valid.matrix[:, test.new].nnz == 0  # the test's new items are gone from validation entirely
    assert not set(np.concatenate(valid.targets)) & set(test.new)
    assert test.matrix[:, valid.new].nnz > 0  # ... and validation's are ordinary items on test
    for hist, targets in zip(test.histories, test.targets):
        assert len(hist) and len(targets) and not set(hist) & set(test.new) and set(targets) <= set(test.new)
    assert cold_item_tasks(split, 0.2, seed=3)[1].new.tolist() == test.new.tolist()


def test_text_rows_beat_random_on_genre_loyal_users(split):
    split, data = split
    _, test = cold_item_tasks(split, 0.2, seed=0)
    items = [data.catalog[i] for i in split.items]
    genre = {g: n for n, g in enumerate(sorted({it.fields["genres"] for it in items}))}
    vectors = np.eye(3)[[genre[it.fields["genres"]] for it in items]] + 0.01
    knn = task_metrics(test, knn_scores(test, vectors))["new"]["N@10"].mean()
    scores, _ = transfer_scores(test, vectors, TransferConfig(factors=3, lambda_=0.1))
    transfer = task_metrics(test, scores)["new"]["N@10"].mean()
    random = task_metrics(test, np.random.default_rng(0).random(scores.shape))["new"]["N@10"].mean()
    assert knn > random + 0.1 and transfer > random + 0.1


def test_cold_texts_drop_tags_and_add_features():
    class Features:
        def get(self, item_id):
            from promptrec.types import ItemFeatures
            return ItemFeatures(themes=["space"], mood="tense", audience="adults", description="A ship.") if item_id == "1" else None

    items = [Item(item_id="1", title="A (1990)", fields={"genres": "Sci-Fi", "tags": "secret tag"}),
             Item(item_id="2", title="B (1991)", fields={"genres": "Drama", "tags": "other"})]
    raw, featured, has = cold_texts(items, Features())
    assert raw == ["A (1990). genres: Sci-Fi", "B (1991). genres: Drama"]
    assert "tag" not in " ".join(featured) and featured[0].startswith(raw[0]) and len(featured[0]) > len(raw[0])
    assert featured[1] == raw[1] and has.tolist() == [True, False]


def test_new_items_take_their_features_from_the_bare_store_only():
    from promptrec.types import ItemFeatures

    class Store:
        def __init__(self, theme, ids):
            self.theme, self.ids = theme, ids

        def get(self, item_id):
            return ItemFeatures(themes=[self.theme], mood="tense", audience="adults", description="") \
                if item_id in self.ids else None

    items = [Item(item_id="1", title="A (1990)", fields={"genres": "Sci-Fi", "tags": "secret"}),
             Item(item_id="2", title="B (1991)", fields={"genres": "Drama", "tags": "other"})]
    _, featured, has = cold_texts(items, Store("with tags", {"1", "2"}), Store("bare", {"1"}), {"1", "2"})
    assert "bare" in featured[0] and "with tags" not in featured[0]
    assert has.tolist() == [True, False]  # item 2 is new and has no bare features: raw text, not the tagged ones
    _, featured, _ = cold_texts(items, Store("with tags", {"1", "2"}), None, set())
    assert all("with tags" in text for text in featured)


def test_knowledge_vectors_sit_beside_the_raw_ones():
    from promptrec.evaluation.cold_start import joined_vectors, knowledge_texts
    from promptrec.types import ItemFeatures

    class Store:
        def get(self, item_id):
            return ItemFeatures(themes=["heist"], mood="tense", audience="adults", description="") if item_id == "1" else None

    items = [Item(item_id="1", title="A (1990)", fields={"genres": "Crime", "tags": "secret"}),
             Item(item_id="2", title="B (1991)", fields={"genres": "Drama", "tags": "other"})]
    texts = knowledge_texts(items, Store())
    assert "heist" in texts[0] and "A (1990)" not in texts[0]  # the model's knowledge alone
    assert "B (1991)" in texts[1] and "other" not in texts[1]  # no features: title + genres, never the tags
    raw = np.eye(2, 4, dtype=np.float32)
    known = np.array([[0, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32)
    joined = joined_vectors(raw, known)
    assert joined.shape == (2, 8) and np.allclose(np.linalg.norm(joined, axis=1), 1.0)
    assert np.isclose(joined[0] @ joined[1], (raw[0] @ raw[1] + known[0] @ known[1]) / 2)  # the mean of the cosines


def test_cold_user_folds_cover_every_user_once_and_cut_histories(split):
    split, _ = split
    folds = cold_user_folds(split, folds=3, seed=0)
    users = [u for f in folds for u in f.cold_users]
    assert sorted(users) == sorted(split.users)
    fold = folds[0]
    names, histories, _, targets = fold.cut(3)
    assert all(len(h) == 3 and not set(h) & set(t) for h, t in zip(histories, targets))
    assert fold.matrix.shape[0] == split.n_users - len(fold.cold_users)
    vectors = np.random.default_rng(0).random((split.n_items, 4))
    out = cold_user_metrics(folds, {"knn": knn_row(vectors)}, cuts=(1, 3))
    assert len(out[1]["knn"]["N@20"]) == len(split.users) and "top" not in out[1]["knn"]


def test_cold_user_lists_are_the_ones_scored_and_leave_the_history_out(split):
    split, _ = split
    folds = cold_user_folds(split, folds=3, seed=0)
    vectors = np.random.default_rng(1).random((split.n_items, 4))
    out = cold_user_metrics(folds, {"knn": knn_row(vectors)}, cuts=(3,), lists=True)[3]["knn"]
    histories = [h for f in folds for h in f.cut(3)[1]]
    targets = [t for f in folds for t in f.cut(3)[3]]
    assert out["top"].shape == (len(histories), 20)
    for top, history, target, n20 in zip(out["top"], histories, targets, out["N@20"]):
        assert not set(top.tolist()) & set(history.tolist())
        gains = np.isin(top, target) / np.log2(np.arange(2, 22))
        assert n20 == pytest.approx(gains.sum() / (1 / np.log2(np.arange(2, 2 + min(20, len(target))))).sum())


def test_cold_user_beyond_scores_each_tier_on_its_own_targets():
    import scipy.sparse as sp

    from promptrec.evaluation.beyond import GroupContext
    from promptrec.evaluation.cold_users import ColdUserFold, cold_user_beyond

    popularity = np.array([40, 30, 8, 8, 7, 7, 1, 1, 1, 1])
    context = GroupContext.for_stage(popularity, np.array([2, 5, 9, 30]), seed=0)
    assert context.tiers.tolist() == [0, 1, 1, 1, 2, 2, 2, 2, 2, 2]  # head {0}, torso {1, 2, 3}, tail the rest
    seqs = [np.array([5, 0, 9]), np.array([4, 1, 2, 8])]  # after one item: user 2 head + tail, user 3 torso + tail
    fold = ColdUserFold(10, sp.csr_matrix((1, 10)), [], [], seqs, [np.arange(3), np.arange(4)], ["c", "d"], [2, 3])
    top = np.full((2, 20), -1)
    top[0, :2] = [0, 7]        # the head target first, its tail target missed
    top[1, :3] = [3, 8, 6]     # no torso target, the tail target second
    n20 = np.array([1 / (1 + 1 / np.log2(3)), (1 / np.log2(3)) / (1 + 1 / np.log2(3) + 0.5)])
    out = cold_user_beyond([fold], 1, {"N@20": n20, "top": top}, context, n_boot=200)
    tiers = out["target_tier"]
    assert tiers["head"]["users"] == 1 and tiers["head"]["N@20"] == 1.0
    assert tiers["torso"]["users"] == 1 and tiers["torso"]["N@20"] == 0.0
    assert tiers["tail"]["users"] == 2 and tiers["tail"]["N@20"] == pytest.approx((0 + 1 / np.log2(3)) / 2)
    assert set(out["activity"]) == {"medium", "heavy"}  # users 2 and 3 of the context's four
    assert out["lists"]["long_tail_share"] == pytest.approx(4 / 5)  # of all shown slots: only item 0 is head
    with pytest.raises(ValueError, match="2 lists but 1 cold users"):
        cold_user_beyond([fold], 3, {"N@20": n20, "top": top}, context)


def test_next_item_with_new_items_hides_new_items_from_histories(split):
    from promptrec.evaluation.cold_product import next_item_with_new

    split, data = split
    catalog = data.catalog
    valid, test = cold_item_tasks(split, 0.2, seed=0)
    for stage, task in (("valid", valid), ("test", test)):
        world = next_item_with_new(split, catalog, valid, test, stage)
        new_ids = {split.items[i] for i in task.new}
        assert world.new == new_ids
        for u in range(world.split.n_users):
            assert not {split.items[i] for i in world.split.train[u]} & new_ids
        if stage == "valid":  # the test's new items are gone: not in the catalog, no target, no history
            gone = {split.items[i] for i in test.new}
            assert not gone & set(world.catalog.ids)
            assert not gone & {split.items[t] for t in world.split.valid_target}
        assert world.is_new_target().any() and not world.is_new_target().all()


def test_row_cache_computes_once_per_key(tmp_path):
    from promptrec.evaluation.cold_start import RowCache

    calls = []

    def compute():
        calls.append(1)
        return {"new": {"N@20": np.array([0.5, 1.0])}, "all": {"N@20": np.array([0.0, 0.25])}}

    cache = RowCache(tmp_path)
    first = cache.get("row a", compute)
    again = RowCache(tmp_path).get("row a", compute)
    assert len(calls) == 1 and np.array_equal(again["all"]["N@20"], first["all"]["N@20"])
    RowCache(tmp_path).get("row b", compute)
    assert len(calls) == 2


def test_model_vector_rows_choose_maps_on_validation_and_read_the_model_vectors(split):
    from promptrec.evaluation.cold_rows import model_vector_rows

    split, data = split
    valid, test = cold_item_tasks(split, 0.2, seed=0)
    items = [data.catalog[i] for i in split.items]
    genre = {g: n for n, g in enumerate(sorted({it.fields["genres"] for it in items}))}
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(len(items), 8))  # raw text that knows nothing
    # a decoder's vectors: one large shared direction, the item's genre on top of it
    model = np.hstack([np.full((len(items), 1), 50.0), np.eye(3)[[genre[it.fields["genres"]] for it in items]],
                       0.05 * rng.normal(size=(len(items), 4))])
    grid = [TransferConfig(factors=3, lambda_=lam) for lam in (0.1, 10.0)]
    rows, selection = model_vector_rows(valid, raw, model, "toy", grid, {}, {})
    assert set(rows) == {"content kNN, model vectors", "transfer map, model vectors", "transfer map, raw + model vectors"}
    assert selection["model_map"] in [g.model_dump() for g in grid] and len(selection["grid_model"]) == 2
    random = task_metrics(test, np.random.default_rng(0).random((test.n_users, test.n_items)))["new"]["N@10"].mean()
    for name, (key, scorer) in rows.items():
        assert "toy" in key
        assert task_metrics(test, scorer(test))["new"]["N@10"].mean() > random + 0.1, name
    # raw noise alone does not get there: the rows read the model's vectors
    assert task_metrics(test, knn_scores(test, raw))["new"]["N@10"].mean() < random + 0.1


def test_embed_cached_continues_an_interrupted_run(tmp_path):
    from promptrec.evaluation.cold_start import embed_cached

    class Counting:
        name, dimension = "counting", 2

        def __init__(self, fail_after=None):
            self.seen, self.fail_after = [], fail_after

        def embed(self, texts):
            if self.fail_after is not None and len(self.seen) >= self.fail_after:
                raise KeyboardInterrupt
            self.seen += texts
            return np.array([[float(t), 1.0] for t in texts], dtype=np.float32)

    texts = [str(n) for n in range(600)]
    first = Counting(fail_after=256)
    with pytest.raises(KeyboardInterrupt):
        embed_cached(first, texts, tmp_path)
    assert len(first.seen) == 256  # one block read before the interruption ...
    second = Counting()
    out = embed_cached(second, texts, tmp_path)
    assert second.seen == texts[256:]  # ... and the rerun reads only the rest
    assert out[:, 0].tolist() == list(range(600))
    assert not list(tmp_path.glob("*.partial.npy"))
    third = Counting()
    assert np.array_equal(embed_cached(third, texts, tmp_path), out) and third.seen == []


def test_row_results_keep_the_all_items_lists_that_the_metrics_score(split, tmp_path):
    from promptrec.evaluation.cold_start import RowCache, row_results, task_lists

    split, _ = split
    _, test = cold_item_tasks(split, 0.2, seed=0)
    scores = np.random.default_rng(1).random((test.n_users, test.n_items))
    found = RowCache(tmp_path).get("row", lambda: row_results(test, scores))
    again = RowCache(tmp_path).get("row", lambda: 1 / 0)  # read back from the .npz, lists included
    lists = again["lists"]["top"]
    assert np.array_equal(lists, found["lists"]["top"]) and lists.shape == (test.n_users, 20)
    rankable = set(test.warm) | set(test.new)
    for u, row in enumerate(lists):
        assert not set(row) & set(test.histories[u]) and set(row[row >= 0]) <= rankable
        hits = np.isin(row[:20], test.targets[u]).sum()  # R@20 among all items counts the same lists
        assert found["all"]["R@20"][u] == pytest.approx(hits / min(20, len(test.targets[u])))
    short = task_lists(test, np.where(np.arange(test.n_items) < 3, 1.0, -np.inf)[None].repeat(test.n_users, 0), 5)
    assert (short[:, 3:] == -1).all()  # fewer rankable items than k: padded


def test_cold_beyond_measures_new_item_share_popularity_and_activity(split):
    from promptrec.evaluation.cold_rows import cold_beyond, task_context
    from promptrec.evaluation.cold_start import row_results

    split, _ = split
    _, test = cold_item_tasks(split, 0.2, seed=0)
    context = task_context(test, seed=0)
    assert context.popularity[test.new].sum() == 0 and (context.tiers[test.new] == 2).all()
    new_first = np.zeros((test.n_users, test.n_items))
    new_first[:, test.new] = 1.0 + np.arange(len(test.new))
    popular_first = np.tile(context.popularity, (test.n_users, 1))
    a = cold_beyond(test, row_results(test, new_first), context, n_boot=200)
    b = cold_beyond(test, row_results(test, popular_first), context, n_boot=200)
    k = min(20, len(test.new))
    assert a["lists"]["new_share"] == pytest.approx(k / 20)  # every new item, first
    # popular first: a new item (no interactions) is shown only when fewer than 20 warm items are left to show
    warm_left = np.array([len(np.setdiff1d(test.warm, h)) for h in test.histories])
    expected = np.clip(20 - warm_left, 0, len(test.new)).sum() / np.minimum(20, warm_left + len(test.new)).sum()
    assert b["lists"]["new_share"] == pytest.approx(expected) and b["lists"]["new_share"] < a["lists"]["new_share"]
    assert a["lists"]["avg_pop"] < b["lists"]["avg_pop"] and b["lists"]["long_tail_share"] < a["lists"]["long_tail_share"]
    lo, hi = b["intervals"]["avg_pop"]
    assert lo <= b["lists"]["avg_pop"] <= hi
    groups = a["activity"]
    assert sum(g["users"] for g in groups.values()) == test.n_users
    assert all(set(g["intervals"]) == {"N@20 new", "N@20 all"} for g in groups.values())
