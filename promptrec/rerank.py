"""LLM rerank with explanations: the model orders the top candidates and says why, citing history.

The reply is untrusted. Picks naming an unknown id, a duplicate or a history item are rejected
(and counted); citations must be real history items. With no valid pick the fused order stands
and the result records the fallback. The final order blends the model's order with the fused one
(``llm_weight``: 0 = fused order only, 1 = the model's order only).

Catalog text is untrusted too: an item whose text looks like instructions or markup
(:mod:`promptrec.screening`) is shown to the model as a placeholder and is never ranked above its
fused rank. A reason is shown only when it passes :func:`promptrec.quality.reason_problem`.
"""

from __future__ import annotations

from collections.abc import Sequence

import logging

import numpy as np
from pydantic import BaseModel, Field

from .data import Catalog
from .knowledge import FeatureStore, feature_text
from .llm import LLMClient
from .prompts import as_data, finish_sentence, load_prompt
from .quality import reason_problem
from .screening import PLACEHOLDER, screen
from .types import Candidate, UserProfile

log = logging.getLogger(__name__)


REASON_MAX_CHARS = 120


_DANGLING = frozenset("a an the and or but of with to for in on at by as like that that's which who whose is are was "
                      "were its their his her this these than from".split())


def whole_reason(text: str) -> str:
    """A reason cut by the length limit, or left by the model on a word no sentence ends with
    ("…, which is a comedy that's"), ends at its last whole clause instead."""
    text = " ".join(text.split())
    words = text.rstrip(" ,;:-").split()
    dangling = bool(words) and words[-1].lower() in _DANGLING
    return finish_sentence(text, len(text) if dangling else REASON_MAX_CHARS)


def reply_budget(k: int) -> int:
    """Tokens allowed for a reply of ``k`` picks: enough for every reason at its maximum length,
    so a valid reply is never cut short (a cut-off reply is invalid JSON)."""
    return k * (REASON_MAX_CHARS + 40) + 40


class Pick(BaseModel):
    id: str = Field(max_length=8)
    reason: str = Field(max_length=REASON_MAX_CHARS + 40)
    because: list[str] = Field(default_factory=list, max_length=3)


class RerankReply(BaseModel):
    picks: list[Pick]


class Explanation(BaseModel):
    text: str
    cited: list[str]
    source: str = "llm"


class RerankOutcome(BaseModel):
    """The final order of the candidates and the model's valid explanations."""

    order: list[str]
    explanations: dict[str, Explanation] = Field(default_factory=dict)
    valid: bool
    error: str | None = None
    rejected: int = 0
    llm_order: list[str] = Field(default_factory=list, description="The model's own order (averaged over permutations).")
    rejected_reasons: dict[str, str] = Field(
        default_factory=dict, description="Items whose model reason was not shown, and why (quality gate, no citation)."
    )
    flagged: dict[str, str] = Field(
        default_factory=dict, description="Items whose text looked like instructions or markup, and what it looked like."
    )


def rerank_schema(candidate_keys: Sequence[str], history_keys: Sequence[str], k: int) -> dict:
    """JSON schema that lets a grammar-constrained model emit only known ids.

    With no history items there is nothing to cite, so a pick has no ``because`` field at all
    (an empty ``enum`` cannot be compiled into a grammar).
    """
    properties = {
        "id": {"type": "string", "enum": list(candidate_keys)},
        "reason": {"type": "string", "minLength": 10, "maxLength": REASON_MAX_CHARS},
    }
    if history_keys:
        properties["because"] = {
            "type": "array", "items": {"type": "string", "enum": list(history_keys)}, "minItems": 1, "maxItems": 2
        }
    pick = {"type": "object", "properties": properties, "required": list(properties)}
    return {
        "type": "object",
        "properties": {"picks": {"type": "array", "items": pick, "minItems": k, "maxItems": k}},
        "required": ["picks"],
    }


def blend_orders(fused: Sequence[str], llm: Sequence[str], weight: float) -> list[str]:
    """Combine two orders by rank score: (1-w)·fused + w·model; unpicked items score 0 on the model side."""
    depth = len(fused)
    fused_score = {item: 1.0 - r / depth for r, item in enumerate(fused)}
    llm_score = {item: 1.0 - r / depth for r, item in enumerate(llm)}
    scored = [((1 - weight) * fused_score[i] + weight * llm_score.get(i, 0.0), -r, i) for r, i in enumerate(fused)]
    return [i for _, _, i in sorted(scored, reverse=True)]


def hold_back(order: Sequence[str], fused: Sequence[str], held: set[str] | dict) -> list[str]:
    """``order`` with every ``held`` item kept at or below its fused rank: a held item can lose
    rank, never gain it; the other items keep their relative order in ``order``."""
    fused_rank = {item: r for r, item in enumerate(fused)}
    free = [i for i in order if i not in held]
    # a held item may not come before max(its place in `order`, its fused rank)
    waiting = sorted((max(r, fused_rank.get(i, r)), fused_rank.get(i, r), i) for r, i in enumerate(order) if i in held)
    out: list[str] = []
    while free or waiting:
        if waiting and (waiting[0][0] <= len(out) or not free):
            if not free:  # only held items are left: by fused rank, each lands at or below it
                out += [i for _, _, i in sorted(waiting, key=lambda w: w[1])]
                break
            out.append(waiting.pop(0)[2])
        else:
            out.append(free.pop(0))
    return out


class LLMReranker:
    """Reorders and explains candidates with the ``rerank`` prompt.

    Args:
        client: The LLM client.
        catalog: Item texts.
        features: Item features, used in candidate descriptions when present.
        llm_weight: See :func:`blend_orders`.
        history_items: Most recent history items shown (and citable).
        permutations: Candidate orders asked (1 = fused order; 2 adds the reversed order), averaged
            against position bias.
    """

    template_name = "rerank"
    cold_template_name = "rerank_no_history"

    def __init__(
        self,
        client: LLMClient,
        catalog: Catalog,
        features: FeatureStore | None = None,
        llm_weight: float = 0.5,
        history_items: int = 12,
        permutations: int = 1,
        seed: int = 0,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.features = features
        self.llm_weight = llm_weight
        self.history_items = history_items
        self.permutations = permutations
        self.seed = seed
        self.template = load_prompt(self.template_name)
        self.cold_template = load_prompt(self.cold_template_name)
        self._screened: dict[str, str | None] = {}

    def _text(self, item_id: str) -> str:
        return feature_text(self.catalog[item_id], self.features.get(item_id) if self.features else None)

    def flag(self, item_id: str) -> str | None:
        """What makes an item's text unsafe to show the model (see :func:`promptrec.screening.screen`), or None."""
        text = self._text(item_id)  # keyed by text: features may arrive later
        if text not in self._screened:
            self._screened[text] = screen(text)
        return self._screened[text]

    def _describe(self, item_id: str) -> str:
        return PLACEHOLDER if self.flag(item_id) else as_data(self._text(item_id), limit=200)

    def _ask(self, order: list[str], history: list[str], ratings: dict[str, float], profile: str, request: str,
             k: int, history_ids: set[str], evidence: dict[str, str | None],
             ) -> tuple[list[str], dict[str, Explanation], int, str | None, dict[str, str]]:
        keys = {f"C{n}": item for n, item in enumerate(order, start=1)}
        hkeys = {f"H{n}": item for n, item in enumerate(history, start=1)}
        hkey_of = {item: key for key, item in hkeys.items()}
        hist_lines = [
            f"{key}: {self._describe(item)}" + (f" | rated {ratings[item]:g}" if item in ratings else "")
            for key, item in hkeys.items()
        ]
        values = {
            "k": str(k),
            "profile": as_data(profile, limit=700),
            "history": "\n".join(hist_lines),
            "request": as_data(request, limit=300) if request else "(none)",
            "candidates": "\n".join(
                f"{key}: {self._describe(item)}"
                + (f" [often chosen by people who liked {hkey_of[evidence[item]]}: {as_data(self.catalog[evidence[item]].title, 80)}]"
                   if evidence.get(item) in hkey_of and not self.flag(evidence[item]) else "")
                for key, item in keys.items()
            ),
        }
        if not hkeys:
            del values["history"]
        template = self.template if hkeys else self.cold_template
        result = self.client.generate(
            template, RerankReply, values, schema=rerank_schema(list(keys), list(hkeys), k), max_tokens=reply_budget(k)
        )
        if result.value is None:
            return [], {}, 0, result.error, {}
        shown_titles = {item: self.catalog[item].title for item in [*order, *history] if not self.flag(item)}
        picked: list[str] = []
        explanations: dict[str, Explanation] = {}
        refused: dict[str, str] = {}
        rejected = 0
        for pick in result.value.picks:
            item = keys.get(pick.id.strip())
            if item is None or item in picked or item in history_ids:
                rejected += 1
                continue
            picked.append(item)
            cited = list(dict.fromkeys(hkeys[c] for c in pick.because if c in hkeys))
            reason = whole_reason(pick.reason)
            problem = self._reason_problem(item, reason, cited, bool(hkeys), shown_titles)
            if problem:
                refused[item] = problem
                log.info("rerank: reason for %s not shown (%s): %.160r", item, problem, reason)
            else:
                explanations[item] = Explanation(text=reason, cited=cited)
        return picked, explanations, rejected, None if picked else "no valid pick in the reply", refused

    def _reason_problem(self, item: str, reason: str, cited: list[str], citable: bool,
                        shown_titles: dict[str, str]) -> str | None:
        if self.flag(item):
            return "the item's own text was withheld from the model"
        if citable and not cited:
            return "cites no history item"
        allowed = {item, *cited}
        return reason_problem(
            reason,
            allowed_titles=[shown_titles[i] for i in allowed if i in shown_titles],
            other_titles=[t for i, t in shown_titles.items() if i not in allowed],
        )

    def rerank(
        self,
        candidates: Sequence[Candidate],
        history: Sequence[str],
        k: int,
        profile: UserProfile | None = None,
        request: str | None = None,
        ratings: dict[str, float] | None = None,
        llm_weight: float | None = None,
    ) -> RerankOutcome:
        """Rerank ``candidates`` (in fused order) for a user with ``history`` (oldest first).

        ``llm_weight`` overrides the reranker's own weight for this call (e.g. for a typed request).
        """
        fused = [c.item_id for c in candidates]
        k = min(k, len(fused))
        if k == 0:
            return RerankOutcome(order=fused, valid=False, error="no candidates")
        history_ids = set(history)
        evidence = {c.item_id: c.evidence for c in candidates}
        recent = set(history[-self.history_items :]) | {e for e in evidence.values() if e in history_ids}
        shown_history = [item for item in history if item in recent]
        profile_text = profile.text() if profile else "(unknown)"
        rng = np.random.default_rng(self.seed)
        positions: dict[str, list[int]] = {i: [] for i in fused}
        explanations: dict[str, Explanation] = {}
        refused: dict[str, str] = {}
        flagged = {i: f for i in dict.fromkeys([*fused, *shown_history]) if (f := self.flag(i))}
        rejected, errors, answered = 0, [], 0
        for p in range(max(1, self.permutations)):
            order = fused if p == 0 else (fused[::-1] if p == 1 else list(rng.permutation(fused)))
            picked, expl, bad, error, why = self._ask(
                order, shown_history, ratings or {}, profile_text, request or "", k, history_ids, evidence
            )
            rejected += bad
            for item, problem in why.items():
                refused.setdefault(item, problem)
            if error:
                errors.append(error)
                continue
            answered += 1
            for rank, item in enumerate(picked):
                positions[item].append(rank)
            for item in fused:
                if item not in picked:
                    positions[item].append(len(fused))
            for item, explanation in expl.items():
                explanations.setdefault(item, explanation)
        if answered == 0:
            return RerankOutcome(order=fused, valid=False, error="; ".join(dict.fromkeys(errors)), rejected=rejected,
                                 flagged=flagged)
        mean_rank = {i: float(np.mean(r)) for i, r in positions.items()}
        llm_order = [i for i in sorted(fused, key=lambda i: (mean_rank[i], fused.index(i))) if mean_rank[i] < len(fused)]
        blended = blend_orders(fused, llm_order, self.llm_weight if llm_weight is None else llm_weight)
        return RerankOutcome(
            order=hold_back(blended, fused, flagged),
            explanations=explanations,
            valid=True,
            rejected=rejected,
            llm_order=llm_order,
            rejected_reasons={i: w for i, w in refused.items() if i not in explanations},
            flagged=flagged,
        )


def _new_item_explanation(candidate: Candidate, catalog: Catalog) -> Explanation:
    n = candidate.new_item_interactions
    text = ("New in the catalog: nobody has chosen it yet" if n == 0
            else f"Little known so far: chosen {n} time{'s' if n != 1 else ''}")
    text += "; its description matches what people with your taste choose"
    if candidate.evidence and candidate.evidence in catalog:
        return Explanation(text=f"{text}, and it reads like {catalog[candidate.evidence].title}, which is in your history.",
                           cited=[candidate.evidence], source="evidence")
    return Explanation(text=f"{text}.", cited=[], source="evidence")


def evidence_explanation(candidate: Candidate, catalog: Catalog) -> Explanation:
    """A deterministic explanation from the strongest evidence behind a candidate."""
    if candidate.new_item_interactions is not None:
        return _new_item_explanation(candidate, catalog)
    if candidate.evidence and candidate.evidence in catalog:
        title = catalog[candidate.evidence].title
        source = max(candidate.scores, key=candidate.scores.get) if candidate.scores else ""
        if source == "embedding":
            text = f"Close in content to {title}, which is in your history."
        else:
            text = f"People who liked {title}, as you did, often chose this next."
        return Explanation(text=text, cited=[candidate.evidence], source="evidence")
    return Explanation(text="Popular with people whose history resembles yours.", cited=[], source="evidence")
