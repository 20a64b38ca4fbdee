"""Backends for testing distributed jobs: importable on Ray workers, deterministic, with one-time faults."""

from __future__ import annotations

import os
from pathlib import Path

from ..llm.fake import ScriptedLLM
from ..llm.types import ChatRequest


def echo_reply(request: ChatRequest) -> dict:
    """A schema-valid reply whose description names the item (features) or whose summary counts the
    history lines (profiles), so a test can tell which request a record answers."""
    from . import valid_reply

    reply = valid_reply(request)
    user = request.messages[-1]["content"]
    if "themes" in reply:
        data = [line for line in user.splitlines() if line.strip() and not line.startswith("<")]
        reply["description"] = "About " + data[-1][:150]
    if "likes" in reply:
        reply["summary"] = f"Profiled from {sum(1 for line in user.splitlines() if line.startswith('- '))} items."
    return reply


def scripted_backend(settings) -> ScriptedLLM:
    """A backend factory for :func:`promptrec.distributed.run_feature_job`: a ScriptedLLM answering every prompt."""
    return ScriptedLLM(default=echo_reply)


class FailOnce:
    """A backend factory whose backend fails the first model call made anywhere in the cluster.

    ``mode`` "raise" raises RuntimeError in the task; "exit" kills the worker process. A marker file,
    created atomically, makes it happen once across all workers and retries.
    """

    def __init__(self, marker: Path | str, mode: str = "exit", after: int = 0) -> None:
        self.marker, self.mode, self.after = str(marker), mode, after

    def __call__(self, settings) -> ScriptedLLM:
        marker, mode, after = self.marker, self.mode, self.after
        calls = {"n": 0}

        def reply(request: ChatRequest):
            calls["n"] += 1
            if calls["n"] > after:
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    return echo_reply(request)
                if mode == "exit":
                    os._exit(1)
                raise RuntimeError("injected failure")
            return echo_reply(request)

        return ScriptedLLM(default=reply)


def url_backend(settings) -> ScriptedLLM:
    """A backend factory whose model id is the base URL the worker was given (to see where shards went)."""
    return ScriptedLLM(default=echo_reply, model_id=f"scripted@{settings.llm.base_url}")


class TinyRecommender:
    """A Recommender factory for batch jobs: the tiny dataset, hashed embeddings, an in-memory Chroma,
    a scripted model (each worker builds its own; every one answers the same)."""

    def __init__(self, settings) -> None:
        self.settings = settings

    def __call__(self):
        from ..llm import LLMCache, LLMClient
        from ..pipeline import Recommender
        from ..retrieval.store import make_client
        from . import HashEmbedder, tiny_dataset, valid_reply

        client = LLMClient(ScriptedLLM(default=valid_reply), LLMCache(None))
        return Recommender(self.settings, dataset=tiny_dataset(), llm=client, embedder=HashEmbedder(),
                           chroma_client=make_client())
