import threading

import pytest

from promptrec.distributed.profiles import ProfileStore
from promptrec.knowledge import FeatureStore
from promptrec.knowledge.batch import DEGENERATE, run_feature_batch, run_profile_batch
from promptrec.llm import LLMCache, LLMClient, ScriptedLLM
from promptrec.llm.parallel import bounded_map, concurrency

GOOD = {"themes": ["space", "friendship"], "mood": "upbeat", "audience": "families", "description": "A trip."}
JUNK = {"themes": ["Documentary"] * 5, "mood": "Documentary", "audience": "people", "description": "A film."}
PROFILE = {"likes": ["space operas", "heists"], "dislikes": [], "recent_interests": ["sequels"],
           "summary": "Likes big ideas."}


class Together(ScriptedLLM):
    """Answers only when ``n`` requests are in flight at once (a barrier): proves they overlap."""

    def __init__(self, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_concurrency = n
        self.barrier = threading.Barrier(n, timeout=60)
        self.lock = threading.Lock()

    def chat(self, request):
        self.barrier.wait()  # raises BrokenBarrierError when fewer than n requests ever overlap
        with self.lock:
            return super().chat(request)


def test_concurrency_reads_the_backend():
    assert concurrency(ScriptedLLM()) == 1
    assert concurrency(Together(4)) == 4


def test_bounded_map_keeps_inputs_with_results_and_reraises():
    assert sorted(bounded_map(lambda x: x * 2, range(7), 3)) == [(i, 2 * i) for i in range(7)]

    def boom(x):
        if x == 2:
            raise ValueError("no")
        return x

    with pytest.raises(ValueError):
        list(bounded_map(boom, range(5), 2))


def test_features_run_together_and_degenerate_ones_are_stored_as_failed(tiny, tmp_path):
    items = list(tiny.catalog)[:8]
    junk_id = items[3].item_id
    backend = Together(4, default=lambda r: JUNK if items[3].title in r.messages[1]["content"] else GOOD)
    cache = LLMCache(None)
    store = FeatureStore(tmp_path / "f.jsonl")
    report = run_feature_batch(LLMClient(backend, cache), items, store)
    assert report.workers == 4 and report.done == 7 and report.rejected == {"repeated themes": 1}
    assert report.model_calls == 8 and report.processed == 8
    record = FeatureStore(tmp_path / "f.jsonl").record(junk_id)
    assert record.features is None and record.error == DEGENERATE + "repeated themes"
    assert store.get(items[0].item_id).themes == ["space", "friendship"]
    # a rerun asks again only the rejected item, from the reply cache: no model call
    again = run_feature_batch(LLMClient(ScriptedLLM(model_id="scripted"), cache), items, FeatureStore(tmp_path / "f.jsonl"),
                              workers=1)
    assert (again.already_done, again.retried, again.model_calls, again.cache_hits) == (7, 1, 0, 1)


def test_interrupted_batch_keeps_finished_records(tiny, tmp_path):
    items = list(tiny.catalog)[:4]
    store = FeatureStore(tmp_path / "f.jsonl")
    with pytest.raises(KeyboardInterrupt):
        run_feature_batch(LLMClient(ScriptedLLM(GOOD, GOOD, KeyboardInterrupt())), items, store, workers=1)
    assert len(FeatureStore(tmp_path / "f.jsonl")) == 2
    report = run_feature_batch(LLMClient(ScriptedLLM(default=GOOD)), items, FeatureStore(tmp_path / "f.jsonl"))
    assert (report.already_done, report.done) == (2, 2)


def test_failed_reply_is_counted_not_rejected(tiny, tmp_path):
    items = list(tiny.catalog)[:2]
    report = run_feature_batch(LLMClient(ScriptedLLM("not json", GOOD)), items, FeatureStore(tmp_path / "f.jsonl"))
    assert (report.done, report.failed, report.rejected) == (1, 1, {})


def test_profiles_batch_falls_back_on_degenerate_and_resumes(tiny, tmp_path):
    users = [(u, tiny.interactions.history(u), tiny.interactions.ratings(u)) for u in tiny.interactions.users[:4]]
    backend = Together(2)
    # one degenerate reply: once its repeats and ratings are removed, nothing is left
    backend.enqueue({**PROFILE, "likes": ["2/5", "2/5", "3/5"], "recent_interests": []}, PROFILE, PROFILE, PROFILE)
    store = ProfileStore(tmp_path / "p.jsonl")
    cache = LLMCache(None)
    report = run_profile_batch(LLMClient(backend, cache), tiny.catalog, users, store)
    # the degenerate reply is refused by the profile gate (promptrec.knowledge.users)
    assert (report.requested, report.done, sum(report.rejected.values()), report.workers) == (4, 3, 1, 2)
    records = ProfileStore(tmp_path / "p.jsonl")
    results = [records.get(u).result for u, _, _ in users]
    fallback = [r for r in results if r.source == "fallback"]
    assert len(fallback) == 1 and "nothing left" in fallback[0].error  # refused, with its reason
    assert "2/5" not in fallback[0].profile.likes  # the evidence profile, from the catalog
    again = run_profile_batch(LLMClient(ScriptedLLM(), cache), tiny.catalog, users, ProfileStore(tmp_path / "p.jsonl"),
                              workers=1)
    assert (again.already_done, again.retried, again.model_calls, again.cache_hits) == (3, 1, 0, 1)


def test_recheck_marks_stored_features_the_current_rules_reject(tiny, tmp_path):
    items = list(tiny.catalog)[:3]
    store = FeatureStore(tmp_path / "f.jsonl")
    copied = {**GOOD, "themes": [items[1].title, "friendship"]}
    backend = ScriptedLLM(GOOD, copied, GOOD)
    run_feature_batch(LLMClient(backend), items, store, workers=1, check=lambda f, text, title: None)  # rules off
    assert len(store) == 3
    from promptrec.knowledge.batch import recheck_features

    assert recheck_features(store, tiny.catalog) == {"copied from the prompt": 1}
    reread = FeatureStore(tmp_path / "f.jsonl")
    assert len(reread) == 2 and reread.record(items[1].item_id).error == DEGENERATE + "copied from the prompt"
    assert recheck_features(reread, tiny.catalog) == {}
