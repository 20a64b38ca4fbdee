"""What the endpoints call: the recommender (with and without the model), chat sessions, search.

Every method here is blocking and runs in a worker thread (see :class:`~.limits.Slots`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

from ..chat import ChatSession
from ..errors import PromptrecError
from ..pipeline import Recommender
from ..types import RecommendationList
from .limits import Slots
from .schemas import ItemHit, ItemSearch, RecommendRequest
from .sessions import SessionBusy, SessionStore
from .settings import ServerSettings

log = logging.getLogger(__name__)
Emit = Callable[[str, Any], None]
# components that do not depend on the model: built once, used by both recommenders
_SHARED = ("dataset", "state", "embedder", "store", "features", "collab", "retriever")


class NotAvailable(Exception):
    """The running promptrec cannot do this (yet)."""


def fused_twin(rec: Recommender) -> Recommender:
    """A recommender without the model sharing ``rec``'s data, index and collaborative model: it
    answers in milliseconds with the fused order and evidence explanations."""
    if rec.client is None:
        return rec
    twin = Recommender(rec.settings, dataset=rec.dataset, llm=False, embedder=rec.embedder)
    for name in _SHARED:
        if isinstance(getattr(type(rec), name, None), cached_property):
            twin.__dict__[name] = getattr(rec, name)  # fill the twin's cache: share, do not rebuild
    return twin


def _snapshot(session: ChatSession) -> ChatSession:
    """A copy of a session's state that later turns cannot change (lists are copied)."""
    return dataclasses.replace(session, liked=list(session.liked), excluded=list(session.excluded))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip()


class Service:
    """The recommender behind the HTTP API.

    Args:
        recommender: With or without a model (``llm=False``).
        settings: Serving settings (slots, sessions, search bounds).
    """

    def __init__(self, recommender: Recommender, settings: ServerSettings | None = None) -> None:
        self.rec = recommender
        self.settings = settings or ServerSettings()
        self.slots = Slots(self.settings.concurrency, self.settings.queue, self.settings.queue_timeout_s)
        self.sessions = SessionStore(lambda: ChatSession(self.fast), self.settings.max_sessions,
                                     self.settings.session_ttl_s)
        self._warm_lock = threading.Lock()
        self._fast: Recommender | None = None
        self._titles: list[tuple[str, str, str]] | None = None

    # ----- start-up -----
    def warm(self) -> None:
        """Load the data, index and model now (not on the first request). Idempotent."""
        with self._warm_lock:
            if self._fast is not None:
                return
            rec = self.rec
            rec.dataset.catalog, rec.dataset.interactions.users  # noqa: B018 - load
            rec.retriever  # noqa: B018 - embeds the catalog when the store lacks items
            if rec.client is not None:
                rec.profiler, rec.reranker  # noqa: B018 - loads the model
            self._titles = [(_norm(it.title), it.item_id, it.title) for it in rec.dataset.catalog]
            self._fast = fused_twin(rec)

    @property
    def fast(self) -> Recommender:
        if self._fast is None:
            self.warm()
        return self._fast

    @property
    def has_model(self) -> bool:
        return self.fast is not self.rec

    def health(self) -> dict:
        data = self.rec.dataset
        return {"status": "ok", "dataset": data.name, "items": len(data.catalog), "users": len(data.interactions.users),
                "model": self.rec.client.model_id if self.has_model else None,
                "sessions": len(self.sessions), "slots": self.slots.stats()}

    # ----- endpoints -----
    def recommend(self, body: RecommendRequest) -> RecommendationList:
        rec = self.rec if body.use_model else self.fast
        exclude = rec.resolve_items(body.exclude) if body.exclude else []
        if body.user_id is not None:
            return rec.recommend(body.user_id, k=body.k, request=body.request, exclude=exclude)
        return rec.recommend_for_history(body.history, k=body.k, request=body.request, exclude=exclude)

    def search(self, query: str, limit: int) -> ItemSearch:
        """Titles containing every word of ``query`` (case-insensitive): exact title, then prefix, then
        the rest, most popular first within each; the fuzzy catalog match when nothing contains it."""
        self.warm()
        words = _norm(query).split()
        key = " ".join(words)
        counts = self.rec.dataset.interactions.item_counts
        hits = [(0 if norm == key else 1 if norm.startswith(key) else 2, -int(counts.get(item_id, 0)), title, item_id)
                for norm, item_id, title in self._titles if all(w in norm for w in words)]
        if not hits and (item := self.rec.dataset.catalog.find(query)) is not None:
            hits = [(0, 0, item.title, item.item_id)]
        hits.sort()
        return ItemSearch(query=query, items=[ItemHit(item_id=i, title=t) for *_, t, i in hits[:limit]],
                          truncated=len(hits) > limit)

    def forget(self, user_id: str) -> tuple[dict, int]:
        """Delete what promptrec keeps about a user; returns the recommender's report and how many
        chat sessions about the user were dropped."""
        forget = getattr(self.rec, "forget", None)
        if forget is None:
            raise NotAvailable("forgetting a user is not available in this version of promptrec "
                               "(Recommender.forget is missing)")
        report = forget(user_id)
        if hasattr(report, "model_dump"):
            report = report.model_dump(mode="json")
        elif dataclasses.is_dataclass(report):
            report = dataclasses.asdict(report)
        dropped = self.sessions.drop_user(str(user_id))
        with self._warm_lock:  # the recommender may have rebuilt what the twin shares
            self._fast = fused_twin(self.rec)
        return report, dropped

    def chat(self, session_id: str, line: str, emit: Emit) -> None:
        """Answer one chat line, emitting events (see :mod:`promptrec.server.events`): ``reply`` and
        ``list`` as soon as the order is known (evidence explanations, the model's reasons pending),
        ``explanation`` per item as the model writes it, then ``final``. Errors before ``reply``
        are raised; after it, they are an ``error`` event (the list already sent stays valid)."""
        entry = self.sessions.get(session_id)
        if not entry.lock.acquire(timeout=self.settings.queue_timeout_s):
            raise SessionBusy(f"chat session {session_id!r} is still answering the previous line")
        try:
            session = entry.session
            session.recommender = self.rec if self.has_model else self.fast
            sent = False

            def on_event(kind: str, data) -> None:
                nonlocal sent
                if kind == "list":
                    if not sent:  # a revised list (the model's reading of the request) replaces the list only
                        emit("reply", {"session": session_id, "text": data.text, "quit": data.quit})
                    emit("list", data.recommendations)
                    sent = True
                elif kind == "reason":
                    emit("explanation", {"item_id": data.item_id, "rank": data.rank, "explanation": data.explanation,
                                         "explained_by": data.explained_by, "cited_history": data.cited_history,
                                         "note": data.explanation_note})

            try:
                reply = session.handle(line, on_event=on_event)
            except PromptrecError as err:
                if not sent:
                    raise
                from .errors import status_for

                emit("error", {"status": status_for(err), "detail": str(err)})
                return
            except Exception:
                if not sent:
                    raise
                log.exception("chat: the model pass failed")
                emit("error", {"status": 500, "detail": "internal error while asking the model"})
                return
            if not sent:
                emit("reply", {"session": session_id, "text": reply.text, "quit": reply.quit})
                if reply.recommendations is not None:
                    emit("list", reply.recommendations)
            if reply.recommendations is not None:
                emit("final", reply.recommendations)
        finally:
            entry.session.recommender = self.fast
            entry.lock.release()
