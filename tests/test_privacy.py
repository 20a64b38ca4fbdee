"""Forgetting a user deletes what was derived from their data, down to the bytes on disk."""

import json
import re
import sqlite3

from typer.testing import CliRunner

from promptrec import Recommender
from promptrec.cli import app
from promptrec.evaluation.rerank_eval import RerankRecord, rerank_log
from promptrec.llm import LLMCache, LLMClient, ScriptedLLM
from promptrec.privacy import drop_user_lines, user_tag
from promptrec.testing import HashEmbedder, valid_reply

HISTORY = re.compile(r"<history>\n(.*?)\n</history>", re.S)


def echo(request):
    """A valid reply that also repeats the prompt's history block (as a careless model might)."""
    reply = valid_reply(request)
    block = HISTORY.search(request.messages[-1]["content"])
    echoed = block.group(1) if block else ""
    if isinstance(reply, str):  # a plain-text reason
        return f"{reply} {echoed}".strip()
    reply["echo"] = echoed
    return reply


def forms(text: str) -> list[bytes]:
    """The bytes a text can have on disk: raw UTF-8, and escaped inside a JSON string."""
    return [text.encode(), json.dumps(text).encode()[1:-1], json.dumps(text, ensure_ascii=False).encode()[1:-1]]


def state_bytes(state_dir) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(state_dir.rglob("*")) if p.is_file())


def found(needle: str, haystack: bytes) -> bool:
    return any(form in haystack for form in forms(needle))


def record(user: str) -> RerankRecord:
    return RerankRecord(user=user, stage="valid", target="101", fused=["101", "102"], fused_rank=1.0, valid=True,
                        seconds=0.1)


def build(settings, tiny):
    settings = settings.model_copy(update={"fusion": settings.fusion.model_copy(update={
        "weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1, "params": {"ease": {"lambda_": 10.0}}})})
    backend = ScriptedLLM(default=echo)
    client = LLMClient(backend, LLMCache(settings.llm_cache_path))
    return Recommender(settings, dataset=tiny, llm=client, embedder=HashEmbedder()), backend


def blocks_of(requests) -> list[str]:
    return [m.group(1) for r in requests if (m := HISTORY.search(r.messages[-1]["content"]))]


def test_forget_leaves_no_trace_of_the_user_and_keeps_others(settings, tiny):
    rec, backend = build(settings, tiny)
    rec.recommend("1", k=3)
    mine = blocks_of(backend.requests)
    seen = len(backend.requests)
    rec.recommend("2", k=3)
    theirs = blocks_of(backend.requests[seen:])
    # the profile holds the history; each of the 3 reasons holds a history item (and its rating)
    assert len(mine) == 1 and len(theirs) == 1 and not set(mine) & set(theirs) and len(backend.requests) == seen * 2
    log = rerank_log(settings.state_dir / "eval" / "rerank-records" / "abc-valid.jsonl")
    for user in ("1", "2", "12"):
        log.append(record(user))
    tag, other_tag = user_tag("1"), user_tag("2")

    before = state_bytes(settings.state_dir)
    assert all(found(block, before) for block in mine + theirs)  # the search can see what it looks for
    assert found(tag, before)

    report = rec.forget("1")
    assert report.cache_replies == 4 and report.record_lines == 1 and report.collab_models == 1
    assert report.record_files == ["eval/rerank-records/abc-valid.jsonl"] and report.profiles == 1
    assert report.profile_records == 1  # the profile stored on disk for user 1, not user 2's

    after = state_bytes(settings.state_dir)
    assert not any(found(block, after) for block in mine)
    assert not found(tag, after)
    assert all(found(block, after) for block in theirs)
    assert [r.user for r in rerank_log(log.path).load().values()] == ["2", "12"]
    assert LLMCache(settings.llm_cache_path).owned(other_tag) == 4
    again = rec.recommend("2", k=3)  # still served (from the cache), after a refit of the collaborative model
    assert len(again.items) == 3 and len(backend.requests) == seen + 4


def test_forget_from_the_command_line(settings, tiny, tmp_path):
    rec, _ = build(settings, tiny)
    rec.recommend("1", k=2)
    result = CliRunner().invoke(app, ["--state-dir", str(settings.state_dir), "forget", "1"])
    assert result.exit_code == 0, result.output
    assert "Forgot user 1" in result.output and "3 cached model replies deleted" in result.output
    assert LLMCache(settings.llm_cache_path).owned(user_tag("1")) == 0 and len(LLMCache(settings.llm_cache_path)) == 0


def test_a_reply_shared_with_another_user_is_forgotten_too(tmp_path):
    from promptrec.llm import ChatResponse
    from promptrec.llm.cache import cache_owner

    cache = LLMCache(tmp_path / "c.sqlite")
    with cache_owner(user_tag("2")):
        cache.put("k", "m", "t", ChatResponse(text="shared secret"))
    with cache_owner(user_tag("1")):
        assert cache.get("k").text == "shared secret"
    assert cache.forget(user_tag("1")) == 1
    assert cache.get("k") is None and cache.owned(user_tag("2")) == 0
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"shared secret" not in data


def test_old_cache_file_is_upgraded_and_its_rows_reported_untagged(tmp_path):
    path = tmp_path / "c.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE replies (key TEXT PRIMARY KEY, model_id TEXT NOT NULL, template_hash TEXT NOT NULL, "
               "text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
               "seconds REAL NOT NULL, created REAL NOT NULL)")
    db.execute("INSERT INTO replies VALUES ('k', 'm', 't', 'old', 1, 1, 0.1, 0)")
    db.commit()
    db.close()
    cache = LLMCache(path)
    assert cache.get("k").text == "old" and cache.untagged() == 1 and cache.forget(user_tag("1")) == 0


def test_record_lines_naming_the_user_are_dropped(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"user": "7", "rank": 1}\n{"user": "70", "rank": 2}\n{"user_id": 7}\n'
                    '{"item_id": "7"}\n{"user": "7", "ran\n')
    assert drop_user_lines(path, "7") == 3
    assert path.read_text() == '{"user": "70", "rank": 2}\n{"item_id": "7"}\n'


def test_evaluation_replies_and_records_are_forgotten(settings, tiny, tmp_path):
    from promptrec.evaluation.product import Bench, index_split_items, split_catalog, stage_world
    from promptrec.evaluation.rerank_eval import run_rerank
    from promptrec.evaluation.splits import protocol_a_split
    from promptrec.privacy import forget_user
    from promptrec.retrieval import ItemVectorStore
    from promptrec.retrieval.store import make_client
    from promptrec.settings import FusionSettings

    split = protocol_a_split(tiny.interactions.frame, k=2)
    catalog = split_catalog(split, tiny)
    store = ItemVectorStore(make_client(tmp_path / "c"), HashEmbedder(), "items")
    index_split_items(store, catalog)
    fusion = FusionSettings(weights={"embedding": 0.3, "ease": 1.0}, params={"ease": {"lambda_": 10.0}})
    settings = settings.model_copy(update={"fusion": fusion, "rerank": settings.rerank.model_copy(update={"depth": 6}),
                                           "profile": settings.profile.model_copy(update={"token_budget": 100})})
    client = LLMClient(ScriptedLLM(default=echo), LLMCache(settings.llm_cache_path))
    bench = Bench(settings=settings, catalog=catalog, store=store, embedder=HashEmbedder(), client=client,
                  features=None, ratings={})
    world = stage_world(split, "test", bench, settings.state_dir / "eval" / "collab")
    log = rerank_log(settings.state_dir / "eval" / "rerank-records" / "x-test.jsonl")
    run_rerank(world, [0, 1], log, k=3)
    me, other = split.users[0], split.users[1]
    assert LLMCache(settings.llm_cache_path).owned(user_tag(me)) == 2

    report = forget_user(settings, me)
    assert (report.cache_replies, report.record_lines, report.collab_models) == (2, 1, 1)
    assert list(rerank_log(log.path).load()) == [other]
    assert LLMCache(settings.llm_cache_path).owned(user_tag(other)) == 2
    assert not found(user_tag(me), state_bytes(settings.state_dir))
