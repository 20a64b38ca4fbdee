"""Server tests on the tiny dataset: HashEmbedder, no model or a scripted one, FastAPI's TestClient."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from promptrec import Recommender
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.retrieval.store import make_client
from promptrec.server import ServerSettings, build_app
from promptrec.testing import valid_reply


@pytest.fixture
def settings(settings):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1})
    rerank = settings.rerank.model_copy(update={"depth": 8, "llm_weight": 1.0, "request_llm_weight": 1.0})
    return settings.model_copy(update={"fusion": fusion, "rerank": rerank})


@pytest.fixture
def make_recommender(settings, tiny, hash_embedder):
    def make(backend=None, cls=Recommender, dataset=None):
        client = LLMClient(backend) if backend is not None else False
        return cls(settings, dataset=dataset or tiny, llm=client, embedder=hash_embedder,
                   chroma_client=make_client(settings.state_dir / "chroma"))
    return make


@pytest.fixture
def serve(make_recommender):
    """``serve(backend=None, **server_settings)`` -> a started TestClient (closed after the test)."""
    clients = []

    def start(backend=None, recommender=None, **changes):
        rec = recommender or make_recommender(backend)
        app, service = build_app(rec, ServerSettings(**changes))
        client = TestClient(app)
        client.__enter__()
        client.service = service
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def scripted():
    return ScriptedLLM(default=valid_reply)
