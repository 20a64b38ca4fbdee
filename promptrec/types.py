"""The typed records that pass between pipeline stages.

raw interactions -> History -> ItemFeatures -> UserProfile -> Candidate -> Recommendation(List)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class History(BaseModel):
    """What a user did, oldest first: the input of every stage (profile, retrieval, rerank)."""

    model_config = ConfigDict(frozen=True)

    items: list[str] = Field(default_factory=list, description="Item ids, oldest first, no repeats.")
    timestamps: list[int] | None = Field(None, description="Unix seconds per item; None when unknown.")
    ratings: dict[str, float] = Field(default_factory=dict, description="Item id -> rating, where rated.")

    @model_validator(mode="after")
    def _aligned(self) -> History:
        if self.timestamps is not None and len(self.timestamps) != len(self.items):
            raise ValueError(f"{len(self.items)} items but {len(self.timestamps)} timestamps")
        return self

    def steered(self, like: list[str] | tuple[str, ...]) -> History:
        """The history with ``like`` appended as the latest interests (their time is unknown)."""
        extra = [i for i in like if i not in self.items]
        if not like:
            return self
        return History(items=[*self.items, *extra], timestamps=None, ratings=self.ratings)


class ItemFeatures(BaseModel):
    """What the model knows about an item, in a fixed shape."""

    themes: list[Phrase] = Field(min_length=1, max_length=5, description="Up to 5 short themes.")
    mood: str = Field(max_length=60, description="The mood or tone, a few words.")
    audience: str = Field(max_length=60, description="Who would enjoy it, a few words.")
    description: str = Field(max_length=200, description="One sentence about the item.")

    def text(self) -> str:
        text = f"Themes: {', '.join(self.themes)}. Mood: {self.mood}. Audience: {self.audience}."
        return f"{text} {self.description}" if self.description else text


class UserProfile(BaseModel):
    """What the model (or the fallback) concluded about a user's tastes."""

    likes: list[Phrase] = Field(max_length=6, description="What the user enjoys.")
    dislikes: list[Phrase] = Field(max_length=4, description="What the user avoids.")
    recent_interests: list[Phrase] = Field(max_length=4, description="What the most recent items point to.")
    summary: str = Field(max_length=300, description="Two sentences at most.")

    def text(self) -> str:
        parts = [f"Likes: {', '.join(self.likes)}" if self.likes else "",
                 f"Dislikes: {', '.join(self.dislikes)}" if self.dislikes else "",
                 f"Recently: {', '.join(self.recent_interests)}" if self.recent_interests else "",
                 self.summary]
        return ". ".join(p for p in parts if p)


class ProfileResult(BaseModel):
    """A profile and where it came from."""

    profile: UserProfile
    source: Literal["llm", "fallback"]
    history_used: int = Field(description="How many of the most recent history items fitted the token budget.")
    history_tokens: int = 0
    error: str | None = None
    rejected: str | None = Field(None, description="Why the model's profile failed the quality gate (then "
                                 "the evidence profile is shown instead).")
    gate: str | None = Field(None, description="The version of the gate's rules that judged it "
                             "(promptrec.quality.PROFILE_GATE).")
    repaired: list[str] = Field(default_factory=list, description="What the gate removed from the model's "
                                "profile before passing it (a phrase said twice, one both liked and disliked, "
                                "a looping end of the summary).")


class Candidate(BaseModel):
    """An item proposed by retrieval, with each source's score and the fused score."""

    item_id: str
    title: str
    scores: dict[str, float] = Field(default_factory=dict, description="Per-source normalised scores.")
    fused: float = 0.0
    evidence: str | None = Field(None, description="The history item that most supports this candidate.")
    new_item_interactions: int | None = Field(
        None, description="Set for an item the collaborative model cannot score (scored from its text by the "
        "transfer map): how many interactions it has, 0 for an item new to the catalog.")


class Recommendation(BaseModel):
    """One recommended item, explained."""

    item_id: str
    title: str
    rank: int
    score: float = Field(description="The fused retrieval score; when the model reorders, rank follows the model.")
    explanation: str
    cited_history: list[str] = Field(default_factory=list, description="History item ids the explanation cites.")
    explained_by: Literal["llm", "evidence"]
    explanation_note: str | None = Field(
        None, description="Why the model's reason is not the one shown (quality gate, deadline, failed call), "
        "or that it is still being written."
    )


class ExplanationTotals(BaseModel):
    """How the shown items' explanations were made."""

    llm: int = Field(0, description="Reasons written by the model that passed the quality gate.")
    evidence: int = Field(0, description="Reasons made from the evidence (deterministic).")
    rejected: int = Field(0, description="Model reasons refused by the quality gate (replaced by the evidence one).")
    late: int = Field(0, description="Model reasons not ready before the request's deadline.")
    failed: int = Field(0, description="Model calls that failed or answered invalid JSON.")
    pending: int = Field(0, description="Reasons still being written (the list event of a stream).")
    distinct_cited: int = Field(0, description="Distinct history items cited across the list.")


class RecommendationList(BaseModel):
    """The answer to one request, with how it was produced."""

    user_id: str | None
    items: list[Recommendation]
    ordered_by: Literal["llm_rerank", "fusion"] = Field(description="Which stage decided the final order.")
    fallback: bool = Field(False, description="True when the rerank failed and the fused order was used.")
    fallback_reason: str | None = None
    revised: bool = Field(False, description="This list replaces one shown before it: the model's reading of the "
                                             "request changed the items the rules' reading had listed.")
    request: str | None = None
    understood: str | None = Field(None, description="What the request was understood as (intent), in words.")
    intent: dict | None = Field(None, description="The parsed request (promptrec.intent.Intent) as data.")
    profile: ProfileResult | None = None
    rejected_picks: int = Field(0, description="Model picks rejected (unknown id, duplicate, history item).")
    rejected_reasons: int = Field(
        0, description="Shown items whose model reason failed the quality gate and was replaced by the evidence one."
    )
    explanations: ExplanationTotals = Field(default_factory=ExplanationTotals)
    timings: dict[str, float] = Field(default_factory=dict)
    model_id: str | None = None


class StreamEvent(BaseModel):
    """One step of :meth:`promptrec.Recommender.recommend_stream`: ``list`` (the ranked list at once,
    evidence explanations, reasons pending), ``reason`` (one item's explanation as it is written) and
    ``final`` (the finished list, profile and totals)."""

    kind: Literal["list", "reason", "final"]
    result: RecommendationList | None = Field(None, description="The list (kinds list and final).")
    item: Recommendation | None = Field(None, description="The explained item (kind reason).")
