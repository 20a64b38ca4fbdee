"""Request and response bodies, with the limits invalid input is checked against (422)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

MAX_K = 100
MAX_REQUEST_CHARS = 500
MAX_HISTORY = 200
MAX_EXCLUDE = 200

ItemRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
SESSION_ID = r"^[A-Za-z0-9_-]{1,64}$"


class RecommendRequest(BaseModel):
    """Recommendations for a user in the data (``user_id``) or for an ad-hoc ``history``."""

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [
        {"user_id": "1", "k": 5, "request": "something lighter"},
        {"history": ["Toy Story (1995)", "Heat (1995)"], "k": 5, "exclude": ["Jumanji (1995)"]},
    ]}}

    user_id: UserId | None = Field(None, description="A user id from the data.")
    history: list[ItemRef] = Field(default_factory=list, max_length=MAX_HISTORY,
                                   description="Item ids or titles someone liked, oldest first (instead of user_id).")
    k: int = Field(10, ge=1, le=MAX_K, description="How many items.")
    request: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_REQUEST_CHARS)] | None = Field(
        None, description="Free text that steers the picks, e.g. 'lighter comedies'.")
    exclude: list[ItemRef] = Field(default_factory=list, max_length=MAX_EXCLUDE,
                                   description="Item ids or titles never to recommend.")
    use_model: bool = Field(True, description="Rerank and explain with the language model when the server has one; "
                                              "false: fused order with evidence explanations (fast).")

    @model_validator(mode="after")
    def _one_subject(self) -> RecommendRequest:
        if self.user_id is not None and self.history:
            raise ValueError("give user_id or history, not both")
        if self.user_id is None and not self.history and not self.request:
            raise ValueError("give a user_id, a history of liked items, or a request")
        self.request = self.request or None
        return self


class ChatLine(BaseModel):
    """One line typed in a chat: a request, or a command such as /user 1, /exclude TITLE, /why 2."""

    model_config = {"extra": "forbid"}

    text: Annotated[str, StringConstraints(max_length=MAX_REQUEST_CHARS)] = Field(description="What the user typed.")


class ItemHit(BaseModel):
    item_id: str
    title: str


class ItemSearch(BaseModel):
    query: str
    items: list[ItemHit]
    truncated: bool = Field(description="True when more items matched than were returned.")


class Health(BaseModel):
    status: str
    dataset: str
    items: int
    users: int
    model: str | None
    sessions: int
    slots: dict[str, int]


class ErrorBody(BaseModel):
    detail: str
