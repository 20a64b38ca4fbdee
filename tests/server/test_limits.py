"""Bounded work: slots, the queue, 503 when full; bounded chat sessions with expiry."""

from __future__ import annotations

import threading
import time

import pytest

from promptrec.chat import ChatSession
from promptrec.server.limits import Overloaded, Slots
from promptrec.server.sessions import SessionStore


def test_slots_run_at_most_concurrency_and_reject_beyond_the_queue():
    slots = Slots(concurrency=1, queue=1, queue_timeout_s=5)
    gate, started = threading.Event(), threading.Event()

    def blocked():
        started.set()
        gate.wait(5)
        return "first"

    first = slots.submit(blocked)
    assert started.wait(5)
    second = slots.submit(lambda: "second")  # queued
    t0 = time.perf_counter()
    with pytest.raises(Overloaded, match="1 requests running and 1 waiting"):
        slots.submit(lambda: "third")
    assert time.perf_counter() - t0 < 0.1  # refused at once, not after a wait
    assert slots.stats() == {"running": 1, "queued": 1, "rejected": 1, "completed": 0, "concurrency": 1, "queue": 1}
    gate.set()
    assert first.result(5) == "first" and second.result(5) == "second"
    assert slots.submit(lambda: "again").result(5) == "again"  # places are given back
    assert slots.stats()["completed"] == 3 and slots.stats()["running"] == slots.stats()["queued"] == 0


def test_a_queued_job_gives_up_after_the_queue_timeout():
    slots = Slots(concurrency=1, queue=1, queue_timeout_s=0.2)
    gate = threading.Event()
    slots.submit(gate.wait, 5)
    waiting = slots.submit(lambda: "never")
    with pytest.raises(Overloaded, match="no slot free within 0.2 s"):
        waiting.result(5)
    gate.set()


def test_a_failing_job_releases_its_slot():
    slots = Slots(concurrency=1, queue=0, queue_timeout_s=1)
    with pytest.raises(ZeroDivisionError):
        slots.submit(lambda: 1 / 0).result(5)
    assert slots.submit(lambda: 2).result(5) == 2


def test_invalid_slot_sizes_are_refused():
    with pytest.raises(ValueError):
        Slots(concurrency=0, queue=1, queue_timeout_s=1)


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def store(max_sessions=2, ttl=10.0):
    clock = Clock()
    return SessionStore(lambda: ChatSession(recommender=None), max_sessions, ttl, clock), clock


def test_sessions_are_kept_per_id_and_the_least_recently_used_goes_first():
    sessions, clock = store()
    a = sessions.get("a")
    assert sessions.get("a") is a
    sessions.get("b")
    clock.now = 1
    sessions.get("a")  # a is now more recent than b
    sessions.get("c")  # full: b goes
    assert len(sessions) == 2 and sessions.get("a") is a
    assert sessions.get("b") is not None and len(sessions) == 2  # b is new again; c (least recent) went


def test_idle_sessions_expire():
    sessions, clock = store(ttl=10)
    a = sessions.get("a")
    clock.now = 10.5
    assert len(sessions) == 0
    assert sessions.get("a") is not a


def test_busy_sessions_are_not_evicted_and_a_full_store_refuses():
    sessions, clock = store(max_sessions=1, ttl=10)
    busy = sessions.get("a")
    busy.lock.acquire()
    clock.now = 100  # expired, but answering: kept
    with pytest.raises(Overloaded, match="too many chat sessions"):
        sessions.get("b")
    busy.lock.release()
    assert sessions.get("b") is not busy


def test_sessions_about_a_user_can_be_dropped():
    sessions, _ = store(max_sessions=5)
    sessions.get("a").session.user_id = "7"
    sessions.get("b").session.user_id = "8"
    sessions.get("c").session.user_id = "7"
    assert sessions.drop_user("7") == 2 and len(sessions) == 1
    assert sessions.drop("b") and not sessions.drop("b")


def test_an_overloaded_server_answers_503_at_once(serve, scripted):
    gate, inside = threading.Event(), threading.Event()
    real_chat = scripted.chat

    def slow_chat(request):
        inside.set()
        gate.wait(10)
        return real_chat(request)

    scripted.chat = slow_chat
    client = serve(scripted, concurrency=1, queue=0)
    results = {}
    worker = threading.Thread(target=lambda: results.update(slow=client.post("/recommend", json={"user_id": "1", "k": 3})))
    worker.start()
    try:
        assert inside.wait(10)
        t0 = time.perf_counter()
        busy = client.post("/recommend", json={"user_id": "2", "k": 3})
        elapsed = time.perf_counter() - t0
        chat_busy = client.post("/chat/x", json={"text": "/user 2"})
        assert client.get("/healthz").json()["slots"]["running"] == 1  # health needs no slot
    finally:
        gate.set()
        worker.join(10)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert "server busy" in busy.json()["detail"] and elapsed < 1.0
    assert chat_busy.status_code == 503 and "server busy" in chat_busy.json()["detail"]
    assert results["slow"].status_code == 200 and len(results["slow"].json()["items"]) == 3
    assert client.post("/recommend", json={"user_id": "2", "k": 3}).status_code == 200
