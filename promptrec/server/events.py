"""The chat event protocol: ``POST /chat/{session}`` answers ``text/event-stream``.

Each event is ``event: NAME`` and one ``data:`` line of JSON, then a blank line. In order:

``reply``        always first: ``{"session", "text", "quit"}``, the chat's answer to the line
                 (a headline such as "Excluded Heat (1995)", an answer to "why", or help).
``list``         when the line produced recommendations: the RecommendationList as soon as its
                 order is known (the fused order unless ``rerank.reorder``), with evidence
                 explanations (``explained_by: "evidence"``); with a model, each item's
                 ``explanation_note`` says its reason is being written.
``explanation``  when the server has a model, one per shown item as the model writes its reason:
                 ``{"item_id", "rank", "explanation", "explained_by", "cited_history", "note"}``;
                 ``explained_by: "evidence"`` with a ``note`` when the model's reason was refused
                 by the quality gate, late for the deadline, or failed.
``final``        when there was a list: the list the session now holds (same order, the reasons,
                 the profile and ``explanations`` totals).
``error``        instead of ``final`` when the model pass failed after the list: ``{"status", "detail"}``;
                 the ``list`` already sent stays valid.
``done``         always last: ``{}``.

Failures before the stream starts (invalid body or session id, unknown command arguments are
*not* failures but ``reply`` texts, an overloaded server) are plain JSON errors with a 4xx/5xx status.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

EVENTS = ("reply", "list", "explanation", "final", "error", "done")


def encode(event: str, data: Any) -> str:
    """One server-sent event; ``data`` is a pydantic model or anything JSON can write."""
    payload = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data, ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n"


def decode(text: str) -> list[tuple[str, Any]]:
    """Parse a whole event stream back into (event, data) pairs (for clients and tests)."""
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events
