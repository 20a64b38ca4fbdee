"""promptrec inside LangChain: a retriever for chains and RAG, and a tool for agents.

Needs ``pip install 'promptrec[langchain]'``.

Example:
    >>> from promptrec import Recommender                                   # doctest: +SKIP
    >>> rec = Recommender()                                                 # doctest: +SKIP
    >>> retriever = RecommendationRetriever(recommender=rec, user_id="1")  # doctest: +SKIP
    >>> retriever.invoke("something lighter")[0].metadata["title"]         # doctest: +SKIP
    >>> tool = recommend_tool(rec)          # give it to create_agent(model, [tool])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserInputError
from ..types import RecommendationList

TOOL_NAME = "recommend_items"


def _request_reading(result: RecommendationList) -> dict:
    """How the pipeline read a typed request (``understood``/``intent``), when the result carries it."""
    out = {}
    for name in ("understood", "intent"):
        value = getattr(result, name, None)
        if value is not None:
            out[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return out


def to_documents(result: RecommendationList, catalog) -> list[Document]:
    """One ``Document`` per recommendation: the item's text, with rank, score and explanation as metadata."""
    reading = _request_reading(result)
    docs = []
    for rec in result.items:
        item = catalog.get(rec.item_id)
        cited = [catalog[i].title if catalog.get(i) else i for i in rec.cited_history]
        docs.append(Document(
            id=rec.item_id,
            page_content=item.text() if item else rec.title,
            metadata={
                "item_id": rec.item_id, "title": rec.title, "rank": rec.rank, "score": rec.score,
                "explanation": rec.explanation, "explained_by": rec.explained_by,
                "cited_history": list(rec.cited_history), "cited_titles": cited,
                "ordered_by": result.ordered_by, "user_id": result.user_id, **reading,
            },
        ))
    return docs


class RecommendationRetriever(BaseRetriever):
    """Recommendations as retrieved documents; the query is the user's request ("something lighter").

    Configure it with a user in the data (``user_id``) or an ad-hoc ``history`` of item ids or titles
    (oldest first); with neither, the request alone steers retrieval. An empty query means no request.

    Attributes:
        recommender: A :class:`promptrec.Recommender`.
        k: How many documents.
        exclude: Item ids never to return.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    recommender: Any
    user_id: str | None = None
    history: list[str] = Field(default_factory=list)
    k: int = 5
    exclude: list[str] = Field(default_factory=list)

    def recommend(self, request: str | None) -> RecommendationList:
        request = request.strip() if request else None
        if self.user_id is not None:
            return self.recommender.recommend(self.user_id, k=self.k, request=request or None, exclude=self.exclude)
        return self.recommender.recommend_for_history(self.history, k=self.k, request=request or None,
                                                      exclude=self.exclude)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return to_documents(self.recommend(query), self.recommender.dataset.catalog)


class RecommendArgs(BaseModel):
    """What an agent passes to the ``recommend_items`` tool."""

    request: str = Field(description="What the person asks for, in their words, e.g. 'a light comedy for tonight'.")
    user_id: str | None = Field(None, description="Their user id, when they are a known user.")
    liked_titles: list[str] = Field(default_factory=list, description="Titles they said they liked, oldest first.")
    k: int = Field(5, ge=1, le=20, description="How many items to return.")


class RequestArgs(BaseModel):
    """The tool's arguments when it serves one signed-in user: only what they ask for."""

    request: str = Field(description="What the person asks for, in their words, e.g. 'a light comedy for tonight'.")
    k: int = Field(5, ge=1, le=20, description="How many items to return.")


def compact(result: RecommendationList) -> str:
    """The tool's answer: a JSON list of {id, title, why} (short enough for a small model's context)."""
    return json.dumps([{"id": r.item_id, "title": r.title, "why": r.explanation} for r in result.items],
                      ensure_ascii=False)


def recommend_tool(recommender, default_user: str | None = None, max_k: int = 20,
                   signed_in_only: bool = False) -> StructuredTool:
    """The ``recommend_items`` tool over ``recommender``.

    Args:
        default_user: The user to recommend for when the agent passes none (the signed-in user).
        max_k: The most items one call may ask for.
        signed_in_only: Serve ``default_user`` only: the tool takes just ``request`` and ``k``, so the
            agent cannot ask for another user's recommendations (and a small model has less to fill in).

    Unknown users or titles come back to the agent as a tool error message (so it can ask again),
    not as an exception.
    """

    def call(request: str, user_id: str | None = None, liked_titles: list[str] | None = None, k: int = 5) -> str:
        who = user_id or default_user
        k = min(k, max_k)
        try:
            if liked_titles:
                result = recommender.recommend_for_history(liked_titles, k=k, request=request or None)
            elif who is not None:
                result = recommender.recommend(who, k=k, request=request or None)
            else:
                result = recommender.recommend_for_history([], k=k, request=request or None)
        except UserInputError as err:
            raise ToolException(str(err)) from err
        return compact(result)

    if signed_in_only and default_user is None:
        raise ValueError("signed_in_only needs default_user")
    return StructuredTool.from_function(
        call, name=TOOL_NAME, args_schema=RequestArgs if signed_in_only else RecommendArgs,
        handle_tool_error=True, handle_validation_error=True,
        description="Recommend items (movies) for a request. Pass the person's user id if known, or titles they "
                    "liked. Returns a JSON list of {id, title, why}.",
    )
