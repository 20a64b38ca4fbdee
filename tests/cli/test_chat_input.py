"""Chat lines are untrusted: odd digits, markup and escapes are answered, never a crash."""

import pytest

from promptrec import Recommender
from promptrec.chat import ChatSession
from promptrec.retrieval.store import make_client


@pytest.fixture
def session(settings, tiny, hash_embedder):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1})
    settings = settings.model_copy(update={"fusion": fusion})
    rec = Recommender(settings, dataset=tiny, llm=False, embedder=hash_embedder,
                      chroma_client=make_client(settings.state_dir / "chroma"))
    return ChatSession(rec, k=3)


@pytest.mark.parametrize("line", ["/k ²", "/k ٣", "/k 99999999999999999999", "/k -1"])
def test_k_needs_ascii_digits_in_range(session, line):
    reply = session.handle(line)
    assert reply.text == "Usage: /k N with N from 1 to 50" and session.k == 3


@pytest.mark.parametrize("line", ["why #²", "why #٣", "/why ²"])
def test_why_with_a_non_ascii_digit_is_not_a_position(session, line):
    session.handle("/user 1")
    reply = session.handle(line)
    assert "is not among the current suggestions" in reply.text


def test_a_request_with_markup_is_kept_literally(session):
    session.handle("/user 1")
    reply = session.handle("[/dim] comedies [link=http://evil]x[/link]")
    assert reply.recommendations is not None
    assert reply.recommendations.request == "[/dim] comedies [link=http://evil]x[/link]"


def test_undecodable_bytes_in_a_chat_line_become_replacement_characters(session):
    """stdin decodes bytes that are not UTF-8 as lone surrogates, which the embedder's tokenizer
    refuses with a TypeError; the session makes them U+FFFD first."""
    session.handle("/user 1")
    reply = session.handle("\udcff\udcfe comedies")
    assert reply.recommendations is not None
    assert reply.recommendations.request == "\ufffd\ufffd comedies"
    assert "\udcff" not in reply.recommendations.model_dump_json()
