"""The real pipeline (SmolLM2-135M in llama.cpp, MiniLM embeddings, persistent Chroma) on a catalog
with injected items: the model cannot promote them, and nothing internal reaches the user."""

from __future__ import annotations

import re

import pytest

from promptrec import Recommender
from promptrec.llm import LLMClient, make_backend
from promptrec.settings import Settings
from promptrec.types import RecommendationList

pytestmark = pytest.mark.integration

K = 5
INTERNAL = re.compile(r"(?<![A-Za-z0-9])[CH]\d{1,3}(?![A-Za-z0-9])")
PROMPT_WORDS = ("history item", "candidate", "the customer", "taste profile", "json", "picks", "instruction",
                "between tags", "<", ">", "[", "]")


class Recording:
    """The real backend, keeping every request it was sent."""

    def __init__(self, backend) -> None:
        self.backend, self.model_id, self.requests = backend, backend.model_id, []

    def chat(self, request):
        self.requests.append(request)
        return self.backend.chat(request)

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)


def test_injected_items_gain_no_rank_and_no_internal_text_is_shown(hostile_catalog, tmp_path):
    settings = Settings(
        data_dir=hostile_catalog.data_dir, state_dir=tmp_path / "state", download=False,
        llm={"model": "small", "n_ctx": 4096},
        fusion={"weights": {"embedding": 0.5, "ease": 1.0, "itemknn": 0.3}, "min_item_support": 1},
        rerank={"depth": 10, "llm_weight": 1.0, "reorder": True},  # the model's order alone: the strongest pull an injection could get
        profile={"enabled": False},  # the rerank is under test; the profile would only add a minute of CPU
        deadline_s=600.0,  # the model must answer here, even on a busy machine
    )
    backend = Recording(make_backend(settings))
    rec = Recommender(settings, llm=LLMClient(backend))
    user = hostile_catalog.user
    history = rec.history(user)
    fused = [c.item_id for c in rec.retriever.retrieve(history, settings.rerank.depth)]
    offered = [i for i in fused if i in hostile_catalog.hostile]
    assert len(offered) >= 3, "the injected items must reach the model for this test to mean anything"

    result = rec.recommend(user, k=K)

    RecommendationList.model_validate(result.model_dump())
    ids = [r.item_id for r in result.items]
    assert len(ids) == K and len(set(ids)) == K and not set(ids) & set(history.items)
    assert rec.client.stats.calls >= 1  # the model was really asked
    rerank_prompts = [r for r in backend.requests if "picks" in (r.json_schema or {}).get("properties", {})]
    assert rerank_prompts, "the rerank prompt was sent"
    for request in rerank_prompts:
        text = "\n".join(m["content"] for m in request.messages)
        for injected in hostile_catalog.hostile.values():
            assert injected.lower() not in text.lower()  # withheld, not merely escaped
    for rank, item in enumerate(ids):
        if item in hostile_catalog.hostile:
            assert rank >= fused.index(item), f"injected item {item} moved from {fused.index(item) + 1} to {rank + 1}"
    for r in result.items:
        if r.explained_by == "llm":
            assert not INTERNAL.search(r.explanation), r.explanation
            assert not any(w in r.explanation.lower() for w in PROMPT_WORDS), r.explanation
            assert r.item_id not in hostile_catalog.hostile
    # every rejected reason was replaced by an evidence explanation
    assert result.rejected_reasons <= sum(r.explained_by == "evidence" for r in result.items)
