"""A real uvicorn process on a loopback port: 16 concurrent clients, the load-test script, and with the
real SmolLM2 model the event stream (list first, explanations later) and 503 under overload."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from promptrec import Recommender
from promptrec.server.events import decode
from promptrec.settings import Settings
from promptrec.testing import load_eval_script

pytestmark = pytest.mark.integration
CLIENTS = 16
# a short model pass on a 2-core machine: no profile call, 3 items, 6 history items to cite
MODEL_ENV = {"PROMPTREC_PROFILE__ENABLED": "false", "PROMPTREC_RERANK__DEPTH": "3",
             "PROMPTREC_RERANK__HISTORY_ITEMS": "6", "PROMPTREC_LLM__N_CTX": "2048"}


@pytest.fixture(scope="module")
def expected(dataset_folder, tmp_path_factory):
    """What the library answers in-process for users 1..16 (k=5, no model), same data and settings."""
    settings = Settings(dataset=str(dataset_folder), state_dir=tmp_path_factory.mktemp("expected"), download=False,
                        fusion={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1})
    rec = Recommender(settings, llm=False)
    return {str(u): [r.item_id for r in rec.recommend(str(u), k=5).items] for u in range(1, CLIENTS + 1)}


def test_16_concurrent_clients_all_get_their_own_correct_answers(tiny_server, expected):
    barrier = threading.Barrier(CLIENTS)
    results: dict[int, dict] = {}
    failures: list[str] = []

    def client(n: int) -> None:
        user = str(n + 1)
        try:
            with httpx.Client(base_url=tiny_server, timeout=60) as http:
                barrier.wait(30)
                rec = http.post("/recommend", json={"user_id": user, "k": 5})
                chat = http.post(f"/chat/client-{n}", json={"text": f"/user {user}"})
                search = http.get("/items", params={"q": "crime thriller"})
                results[n] = {"rec": rec, "chat": chat, "search": search}
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            failures.append(f"client {n}: {err!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - t0
    assert not failures and len(results) == CLIENTS  # none lost
    for n, got in results.items():
        user = str(n + 1)
        assert got["rec"].status_code == 200, got["rec"].text
        body = got["rec"].json()
        assert body["user_id"] == user and [i["item_id"] for i in body["items"]] == expected[user]
        events = decode(got["chat"].text)
        assert [name for name, _ in events] == ["reply", "list", "final", "done"]
        assert events[0][1]["session"] == f"client-{n}" and events[2][1]["user_id"] == user
        assert [i["item_id"] for i in events[2][1]["items"]] == expected[user]
        assert got["search"].status_code == 200 and len(got["search"].json()["items"]) == 8
    health = httpx.get(f"{tiny_server}/healthz").json()
    assert health["sessions"] >= CLIENTS and health["slots"]["rejected"] == 0
    assert health["slots"]["running"] == 0 and health["slots"]["queued"] == 0
    assert elapsed < 60


def test_the_load_test_script_against_the_real_server(tiny_server):
    load_test = load_eval_script("load_test")
    report = load_test.run(tiny_server, requests=60, concurrency=8, users=load_test.parse_users("1-30"), k=5,
                           max_seconds=60)
    assert report["sent"] == 60 and report["statuses"] == {"200": 60} and report["wrong_answers"] == 0
    assert report["requests_per_s"] > 0 and 0 < report["p50_ms"] <= report["p95_ms"] <= report["max_ms"]


def test_errors_over_real_http(tiny_server):
    with httpx.Client(base_url=tiny_server, timeout=30) as http:
        assert http.post("/recommend", json={"user_id": "nobody"}).status_code == 404
        invalid = http.post("/recommend", json={"user_id": "1", "k": 1000})
        assert invalid.status_code == 422 and "k: Input should be less than or equal to 100" in invalid.json()["detail"]
        assert http.post("/users/1/forget").status_code in (200, 501)  # 501 until Recommender.forget lands
        page = http.get("/")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]


@pytest.fixture(scope="module")
def model_server(dataset_folder, tmp_path_factory, start_server):
    """The real SmolLM2-135M in llama.cpp; one slot and no queue."""
    state = tmp_path_factory.mktemp("serve-model")
    with start_server(dataset_folder, state, state / "server.log", "--concurrency", "1", "--queue", "0",
                      global_options=("--model", "small"), env=MODEL_ENV, timeout=120) as url:
        yield url


def test_real_model_list_first_then_explanations_and_503_while_busy(model_server):
    timeline: list[tuple[str, float, dict]] = []
    listed, finished = threading.Event(), threading.Event()

    def chatter() -> None:
        with httpx.Client(base_url=model_server, timeout=120) as http:
            assert "Pick a /user" in decode(http.post("/chat/model-a", json={"text": "/k 3"}).text)[0][1]["text"]
            t0 = time.perf_counter()
            with http.stream("POST", "/chat/model-a", json={"text": "/user 1"}) as response:
                assert response.status_code == 200
                buffer = ""
                for chunk in response.iter_text():
                    buffer += chunk
                    while "\n\n" in buffer:
                        frame, buffer = buffer.split("\n\n", 1)
                        for name, data in decode(frame + "\n\n"):
                            timeline.append((name, time.perf_counter() - t0, data))
                            if name == "list":
                                listed.set()
        finished.set()

    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        assert listed.wait(60), "the fused list did not arrive"
        t0 = time.perf_counter()
        busy = httpx.post(f"{model_server}/recommend", json={"user_id": "2", "k": 3}, timeout=30)
        refused_in = time.perf_counter() - t0
        health = httpx.get(f"{model_server}/healthz", timeout=10).json()
        still_running = not finished.is_set()
    finally:
        thread.join(120)
    assert still_running, "the model answered before the overload could be tested"
    assert busy.status_code == 503 and "server busy" in busy.json()["detail"] and refused_in < 1.0
    assert busy.headers["retry-after"] == "1"
    assert health["model"].startswith("SmolLM2-135M") and health["slots"]["running"] == 1

    names = [name for name, _, _ in timeline]
    assert names[:2] == ["reply", "list"] and names[-2:] == ["final", "done"]
    fused, final = timeline[1][2], timeline[-2][2]
    explanations = [data for name, _, data in timeline if name == "explanation"]
    assert names.count("explanation") == len(final["items"]) == 3
    assert all(item["explained_by"] == "evidence" and item["explanation_note"] for item in fused["items"])
    assert final["model_id"].startswith("SmolLM2-135M") and final["ordered_by"] == "fusion"
    assert [e["item_id"] for e in explanations] == [item["item_id"] for item in final["items"]]
    assert [item["item_id"] for item in fused["items"]] == [item["item_id"] for item in final["items"]]
    explanation_at = [at for name, at, _ in timeline if name == "explanation"]
    assert timeline[1][1] < explanation_at[0] and explanation_at == sorted(explanation_at)  # list, then reasons
    assert all(e["explanation"].strip() for e in explanations)
    list_at, final_at = timeline[1][1], timeline[-2][1]
    assert list_at < final_at  # the list came first, the model's answer later
    print(f"list after {list_at:.2f} s, the model's list after {final_at:.2f} s")
    after = httpx.post(f"{model_server}/recommend", json={"user_id": "2", "k": 3, "use_model": False}, timeout=60)
    assert after.status_code == 200  # the slot was given back
