"""User knowledge: the model turns a history into a :class:`UserProfile`, within a token budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..data import Catalog
from ..llm import LLMClient
from ..prompts import as_data, finish_sentence, load_prompt, max_length
from ..quality import PROFILE_GATE, TitleIndex, genre_set, profile_problem, repair_profile
from ..types import History, ProfileResult, UserProfile


def history_line(catalog: Catalog, item_id: str, rating: float | None) -> str:
    item = catalog.get(item_id)
    text = as_data(item.text() if item else item_id, limit=160)
    return f"- {text}" + (f" | {rating:g}/5" if rating is not None else "")


def _field_values(catalog: Catalog, item_ids: Sequence[str]) -> Counter:
    counts: Counter = Counter()
    for item_id in item_ids:
        item = catalog.get(item_id)
        if item is None:
            continue
        values = item.fields.get("genres") or item.fields.get("tags") or ""
        counts.update(v.strip() for v in values.split(",") if v.strip())
    return counts


def evidence_profile(catalog: Catalog, history: Sequence[str], ratings: dict[str, float]) -> UserProfile:
    """A deterministic profile from the items' own fields (the fallback when the model fails)."""
    liked = [i for i in history if ratings.get(i, 5.0) >= 3.5] or list(history)
    disliked = [i for i in history if ratings.get(i, 5.0) <= 2.0]
    likes = [v for v, _ in _field_values(catalog, liked).most_common(6)]
    dislikes = [v for v, n in _field_values(catalog, disliked).most_common() if v not in likes and n >= 2][:4]
    recent = [v for v, _ in _field_values(catalog, history[-5:]).most_common(4)]
    summary = f"Mostly enjoys {', '.join(likes[:3]) or 'a mix of items'}"
    summary += f"; recently {', '.join(recent[:2])}." if recent else "."
    return UserProfile(likes=likes, dislikes=dislikes, recent_interests=recent, summary=summary[:300])


class UserProfiler:
    """Builds a profile from the most recent history that fits ``token_budget``.

    Tokens are counted with the backend's own tokenizer (the GGUF's for local models, tiktoken
    for OpenAI models). When the model is off, fails, or replies invalidly, the deterministic
    :func:`evidence_profile` is used and the result says so.

    Args:
        client: The LLM client, or None for the evidence profile only.
        catalog: Item texts.
        token_budget: Maximum tokens of history text in the prompt.
    """

    template_name = "user_profile"

    def __init__(self, client: LLMClient | None, catalog: Catalog, token_budget: int = 500, max_tokens: int = 420):
        self.client = client
        self.catalog = catalog
        self.token_budget = token_budget
        self.max_tokens = max_tokens
        self.template = load_prompt(self.template_name)

    _titles: TitleIndex | None = None

    def check(self, profile: UserProfile, history: Sequence[str]) -> str | None:
        """Why a model-written profile may not be shown (:func:`promptrec.quality.profile_problem`):
        degenerate, offensive, naming titles the catalog lacks, or stating genres the history does not
        have by its catalog genres and tags. None when it may be shown."""
        if self._titles is None:
            self._titles = TitleIndex(item.title for item in self.catalog)
        items = [it for i in history if (it := self.catalog.get(i)) is not None]
        words = [v for it in items for name in ("genres", "tags") for v in (it.fields.get(name) or "").split(",")]
        return profile_problem([profile.likes, profile.dislikes, profile.recent_interests], profile.summary,
                               confirmed=genre_set(words), titles=self._titles,
                               vocabulary=[*words, *(it.title for it in items)])

    def fit_budget(self, lines: Sequence[str]) -> tuple[list[str], int]:
        """The longest suffix of ``lines`` (most recent last) whose tokens fit the budget."""
        kept: list[str] = []
        used = 0
        count = self.client.count_tokens if self.client else (lambda text: len(text.split()))
        for line in reversed(lines):
            cost = count(line + "\n")
            if used + cost > self.token_budget:
                break
            kept.append(line)
            used += cost
        return kept[::-1], used

    def profile(self, user: History) -> ProfileResult:
        """The profile of ``user``'s history (the most recent items that fit the token budget)."""
        history, ratings = user.items, user.ratings
        lines = [history_line(self.catalog, i, ratings.get(i)) for i in history]
        kept, tokens = self.fit_budget(lines)
        if self.client is None:
            return ProfileResult(
                profile=evidence_profile(self.catalog, history, ratings), source="fallback",
                history_used=len(kept), history_tokens=tokens, error="no model",
            )
        result = self.client.generate(
            self.template, UserProfile, {"history": "\n".join(kept)}, max_tokens=self.max_tokens
        )
        if result.value is None:
            return ProfileResult(
                profile=evidence_profile(self.catalog, history, ratings), source="fallback",
                history_used=len(kept), history_tokens=tokens, error=result.error,
            )
        profile, repairs = self.repair(result.value)
        problem = self.check(profile, history)
        if not problem and not (profile.likes or profile.recent_interests):
            problem = "nothing left once its slips were removed"
        if problem:
            return ProfileResult(
                profile=evidence_profile(self.catalog, history, ratings), source="fallback",
                history_used=len(kept), history_tokens=tokens,
                error=f"the model's profile was refused by the quality gate: {problem}", rejected=problem,
                gate=PROFILE_GATE,
            )
        return ProfileResult(profile=profile, source="llm", history_used=len(kept), history_tokens=tokens,
                             repaired=repairs, gate=PROFILE_GATE)

    @staticmethod
    def repair(profile: UserProfile) -> tuple[UserProfile, list[str]]:
        """The model's profile with a cut-off summary ended at a whole clause and its slips removed
        (:func:`promptrec.quality.repair_profile`), and what was removed."""
        summary = finish_sentence(profile.summary, max_length(UserProfile, "summary"))
        (likes, dislikes, recent), summary, notes = repair_profile(
            [profile.likes, profile.dislikes, profile.recent_interests], summary)
        return profile.model_copy(update={"likes": likes, "dislikes": dislikes, "recent_interests": recent,
                                          "summary": summary}), notes
