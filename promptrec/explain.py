"""Grounded explanations of the shown items: one cited history item per item, chosen from the
evidence, the facts the catalog confirms the two share, and one model sentence stating them.

For each shown item, :meth:`Explainer.cite` picks the history item to cite: the retriever's
evidence, shared catalog genres, tags and feature themes, embedding similarity and the user's
rating all count, and an item already cited counts less (at most a third of the list cites the
same item, so a 10-item list cites at least 3 when the history has 3 items worth citing).
:meth:`Explainer.facts` lists what the two verifiably share; :meth:`Explainer.evidence` says it in
a deterministic sentence, and :meth:`Explainer.write` asks the model for one short sentence from
the same facts, as plain text (:func:`plain_reason` reads it). The model's sentence is shown only when
it passes the quality gate (:func:`promptrec.quality.reason_problem`): it names the cited item, states no genre
the catalog does not confirm for the item, names no title outside the catalog, no other shown
title, no ids, no prompt wording, no offensive word, and every genre or theme it states holds for
both the item and the cited item by the same :class:`~promptrec.claims.ClaimReader` the evaluation's
faithfulness metric reads with. Otherwise the evidence sentence stands, and the note says why.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, Field

from .claims import ClaimReader
from .data import Catalog, Item
from .knowledge import FeatureStore
from .llm import LLMClient
from .prompts import as_data, finish_sentence, load_prompt
from .quality import TitleIndex, genre_set, reason_problem, title_core
from .rerank import Explanation
from .screening import screen
from .settings import ExplainSettings
from .types import Candidate, History

log = logging.getLogger(__name__)
PENDING = "the model's reason is being written"
NO_CITATION = "nothing in the history to cite"
WITHHELD = "the item's text looked like instructions or markup and was withheld from the model"
GAVE_UP = ("not asked: the model's last {n} reasons in a row were refused by the quality gate, so this process "
           "stopped asking it (explain.stop_after_refused)")
REUSE_PENALTY = 0.7


class ReasonReply(BaseModel):
    reason: str = Field(max_length=400)


def plain_reason(reply: str, max_chars: int) -> str:
    """The sentence of a plain-text reply: its first line, outer quotes dropped (a JSON object with a
    ``reason`` is read too: some models answer in JSON anyway), cut to ``max_chars`` at its last whole
    clause. What is left is still untrusted: the quality gate reads it."""
    text = reply.strip()
    if text.startswith("{"):
        try:
            text = str(ReasonReply.model_validate_json(text).reason)
        except ValueError:
            pass
    text = (text.splitlines() or [""])[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return finish_sentence(text[:max_chars], max_chars)


def _values(item: Item | None, name: str) -> list[str]:
    if item is None:
        return []
    return [v.strip() for v in (item.fields.get(name) or "").split(",") if v.strip()]


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


@dataclass
class Facts:
    """What an item and a cited history item verifiably share."""

    genres: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    chosen_together: bool = False  # the retriever's collaborative evidence names the cited item
    similar: bool = False  # the retriever's content evidence names it

    def any(self) -> bool:
        return bool(self.genres or self.tags or self.themes or self.chosen_together or self.similar)

    def describe(self) -> str:
        """The facts for the prompt, one per line."""
        lines = []
        if self.genres:
            lines.append(f"genres both have: {', '.join(self.genres)}")
        if self.tags:
            lines.append(f"tags both have: {', '.join(self.tags)}")
        if self.themes:
            lines.append(f"themes both have: {', '.join(self.themes)}")
        if self.chosen_together:
            lines.append("often chosen by the same people")
        if self.similar or not lines:
            lines.append("close in content")
        return "\n".join(lines)


class Explainer:
    """Citations, facts and explanations for the items of one catalog.

    Args:
        catalog: Item texts (genres and tags are read from the ``genres`` and ``tags`` fields).
        features: Model features (their themes count as shared facts when both items have them).
        settings: How many history items may be cited, reason length, on/off for the model.
        client: The model; None explains from the evidence only.
        vectors: ``vectors(ids) -> {id: unit vector}`` (the vector store), for content similarity.

    ``on_draft``, when set, is called with ``(item_id, text, problem)`` for every reason the model
    wrote, shown (``problem`` None) or refused by the gate (``problem`` says why); the evaluation
    reads the drafts before the gate with it.
    """

    template_name = "explain"

    def __init__(self, catalog: Catalog, features: FeatureStore | None = None, settings: ExplainSettings | None = None,
                 client: LLMClient | None = None,
                 vectors: Callable[[Sequence[str]], Mapping[str, np.ndarray]] | None = None) -> None:
        self.catalog = catalog
        self.features = features
        self.settings = settings or ExplainSettings()
        self.client = client if self.settings.enabled else None
        self.vectors = vectors
        self.template = load_prompt(self.template_name)
        self._titles: TitleIndex | None = None
        self._reader: ClaimReader | None = None
        self.on_draft: Callable[[str, str, str | None], None] | None = None
        self.refused_in_a_row = 0  # model reasons refused by the gate since the last one shown (this process)

    @property
    def titles(self) -> TitleIndex:
        if self._titles is None:
            self._titles = TitleIndex(item.title for item in self.catalog)
        return self._titles

    @property
    def reader(self) -> ClaimReader:
        """The claim reader of the catalog and features (built on first use)."""
        if self._reader is None:
            self._reader = ClaimReader(self.catalog, self.features)
        return self._reader

    def claim_problem(self, item_id: str, text: str, cited: str) -> str | None:
        """The claims of ``text`` the catalog or features do not confirm for both ``item_id`` and
        ``cited`` (:meth:`ClaimReader.verdict`); None when all are confirmed or it claims nothing."""
        verdict = self.reader.verdict(item_id, text, [cited])
        if verdict["faithful"] is not False:
            return None
        terms = ", ".join(f"{c['kind']} {c['term']!r}" for c in verdict["claims"] if not c["confirmed"])
        return f"states {terms}, which the catalog does not confirm for both the item and the cited one"

    @property
    def gave_up(self) -> bool:
        """Whether this process stopped asking the model for reasons (``stop_after_refused`` refusals in a row)."""
        limit = self.settings.stop_after_refused
        return limit > 0 and self.refused_in_a_row >= limit

    # ----- what items are -----
    def genres(self, item_id: str) -> list[str]:
        return _values(self.catalog.get(item_id), "genres")

    def tags(self, item_id: str) -> list[str]:
        return _values(self.catalog.get(item_id), "tags")

    def themes(self, item_id: str) -> list[str]:
        feats = self.features.get(item_id) if self.features is not None else None
        return list(feats.themes) if feats else []

    def confirmed_genres(self, item_id: str) -> set[str]:
        """The genres the catalog (genres, tags) or the features confirm for an item."""
        feats = self.features.get(item_id) if self.features is not None else None
        return genre_set([*self.genres(item_id), *self.tags(item_id), *(feats.themes if feats else [])])

    # ----- citations -----
    def facts(self, item_id: str, cited: str, candidate: Candidate | None = None) -> Facts:
        """What ``item_id`` and the history item ``cited`` share, by the catalog and the features."""
        def common(a: list[str], b: list[str]) -> list[str]:
            lower = {v.lower() for v in b}
            return [v for v in dict.fromkeys(a) if v.lower() in lower]

        collab = bool(candidate and candidate.evidence == cited and candidate.scores
                      and max(candidate.scores, key=candidate.scores.get) != "embedding")
        return Facts(genres=common(self.genres(item_id), self.genres(cited)),
                     tags=common(self.tags(item_id), self.tags(cited))[:3],
                     themes=common(self.themes(item_id), self.themes(cited))[:3],
                     chosen_together=collab,
                     similar=bool(candidate and candidate.evidence == cited and not collab))

    def _similarities(self, shown: Sequence[Candidate], pool: Sequence[str]) -> dict[tuple[str, str], float]:
        if self.vectors is None:
            return {}
        try:
            vecs = self.vectors([*dict.fromkeys([*(c.item_id for c in shown), *pool])])
        except Exception:  # noqa: BLE001 - similarity only refines the choice; the facts still hold
            return {}
        return {(c.item_id, h): float(vecs[c.item_id] @ vecs[h])
                for c in shown if c.item_id in vecs for h in pool if h in vecs}

    def cite(self, shown: Sequence[Candidate], history: History) -> dict[str, str | None]:
        """The history item each shown item's explanation cites (None when the history has none).

        Scored per pair: the retriever's evidence, the share of the item's genres the history item
        has, shared tags and themes, content similarity, a liked rating and recency; each earlier
        citation of the same history item costs :data:`REUSE_PENALTY`, and no history item is cited
        by more than a third of the list while another can be.
        """
        items = history.items
        if not items:
            return {c.item_id: None for c in shown}
        index = {h: n for n, h in enumerate(items)}
        evidence = [c.evidence for c in shown if c.evidence in index]
        pool = sorted(set(items[-self.settings.history_items:]) | set(evidence), key=index.get)
        ratings = history.ratings
        liked = [h for h in pool if ratings.get(h, 5.0) > 2.5] or pool
        sims = self._similarities(shown, liked)
        recency = {h: (index[h] + 1) / len(items) for h in liked}
        cap = max(1, math.ceil(len(shown) / 3))
        uses: Counter = Counter()
        out: dict[str, str | None] = {}
        for c in shown:
            own_genres = max(1, len(self.genres(c.item_id)))
            scored = []
            for h in liked:
                f = self.facts(c.item_id, h, c)
                score = (1.0 * (h == c.evidence) + len(f.genres) / own_genres + 0.3 * min(len(f.tags), 3)
                         + 0.3 * min(len(f.themes), 2) + sims.get((c.item_id, h), 0.0) + 0.2 * recency[h]
                         + 0.3 * (ratings.get(h, 0.0) >= 4.0))
                scored.append((round(score - REUSE_PENALTY * uses[h], 9), index[h], h))
            allowed = [s for s in scored if uses[s[2]] < cap] or scored
            best = max(allowed)[2]
            uses[best] += 1
            out[c.item_id] = best
        return out

    # ----- explanations -----
    def evidence(self, candidate: Candidate, cited: str | None, history: History) -> Explanation:
        """A deterministic explanation from the facts ``candidate`` shares with ``cited``."""
        if cited is None or cited not in self.catalog:
            return Explanation(text="Popular with people whose history resembles yours.", cited=[], source="evidence")
        title = self.catalog[cited].title
        rating = history.ratings.get(cited)
        f = self.facts(candidate.item_id, cited, candidate)
        whose = f"{title}, which you rated {rating:g}/5" if rating is not None else f"{title}, which you watched"
        parts = []
        if f.genres:
            noun = "genre" if len(f.genres) == 1 else "genres"
            parts.append(f"Shares the {noun} {_join(f.genres)} with {whose}.")
        if f.tags or f.themes:
            what = _join([*f.tags, *f.themes][:3])
            parts.append(f"Both are tagged {what}." if parts else f"Tagged {what}, like {whose}.")
        new = candidate.new_item_interactions is not None  # nobody (or almost nobody) chose it: no co-choice claim
        if new:
            n = candidate.new_item_interactions
            parts.insert(0, "New in the catalog: nobody has chosen it yet." if n == 0
                         else f"Little known so far: chosen {n} time{'s' if n != 1 else ''}.")
        if f.chosen_together and not new:
            parts.append(f"People who liked {title} often chose it too." if parts
                         else f"People who liked {whose.split(', which')[0]}, as you did, often chose this next.")
        if len(parts) == int(new):
            parts.append(f"Close in content to {title}, which is in your history.")
        return Explanation(text=" ".join(parts), cited=[cited], source="evidence")

    def _describe(self, item_id: str, rating: float | None = None) -> str:
        """An item for the prompt: its title and year (and this person's rating). What it shares with the
        other item is given apart (:meth:`Facts.describe`): the sentence may state only that, and each
        prompt token costs time on a small machine (a reason is asked per shown item)."""
        item = self.catalog[item_id]
        year = re.search(r"\((\d{4})\)\s*$", item.title)
        text = title_core(item.title) + (f" ({year.group(1)})" if year else "")  # "The Terminator (1984)"
        if rating is not None:
            text += f". rated {rating:g}/5 by this person"
        return as_data(text, limit=160)

    def withheld(self, item_id: str) -> bool:
        item = self.catalog.get(item_id)
        return item is None or screen(item.text()) is not None

    def write(self, candidate: Candidate, cited: str | None, history: History,
              others: Sequence[str] = ()) -> tuple[Explanation, str | None, str | None]:
        """The model's reason for ``candidate`` citing ``cited``, when it passes the gate.

        Returns:
            (explanation, note, outcome): the model's explanation (``source="llm"``) and no note, or
            the evidence explanation, a note saying why, and the outcome kind: ``"rejected"`` (the
            quality gate), ``"late"`` (the deadline), ``"failed"`` (call failed or invalid reply),
            ``"skipped"`` (not asked: no model, nothing to cite, withheld text).
        """
        fallback = self.evidence(candidate, cited, history)
        if self.client is None:
            return fallback, None, "skipped"
        if cited is None or cited not in self.catalog:
            return fallback, NO_CITATION, "skipped"
        if self.withheld(candidate.item_id) or self.withheld(cited):
            return fallback, WITHHELD, "skipped"
        if self.gave_up:
            return fallback, GAVE_UP.format(n=self.refused_in_a_row), "skipped"
        facts = self.facts(candidate.item_id, cited, candidate)
        values = {"pick": self._describe(candidate.item_id), "watched": self._describe(cited, history.ratings.get(cited)),
                  "shared": facts.describe(), "max_chars": str(self.settings.max_chars)}
        result = self.client.generate_text(self.template, values, max_tokens=self.settings.max_chars // 3 + 8)
        if result.value is None:
            error = result.error or "no reply"
            late = "deadline" in error
            note = ("the deadline passed before the model's reason was ready" if late
                    else f"the model's reply was not usable ({error[:120]})")
            return fallback, note, "late" if late else "failed"
        text = plain_reason(result.value, self.settings.max_chars)
        item_title, cited_title = self.catalog[candidate.item_id].title, self.catalog[cited].title
        problem = reason_problem(
            text, allowed_titles=[item_title, cited_title],
            other_titles=[self.catalog[o].title for o in others if o in self.catalog and o not in (candidate.item_id, cited)],
            must_name=[cited_title], confirmed=self.confirmed_genres(candidate.item_id),
            titles=self.titles,
            vocabulary=[*self.tags(candidate.item_id), *self.tags(cited), *self.themes(candidate.item_id),
                        *self.themes(cited), *self.genres(candidate.item_id), *self.genres(cited)],
        ) or self.claim_problem(candidate.item_id, text, cited)
        if self.on_draft is not None:
            self.on_draft(candidate.item_id, text, problem)
        if problem:
            log.info("explain: reason for %s not shown (%s): %.200r", candidate.item_id, problem, text)
            self.refused_in_a_row += 1
            if self.gave_up:
                log.warning("explain: the model's last %d reasons were all refused by the quality gate; "
                            "evidence explanations from now on (explain.stop_after_refused)", self.refused_in_a_row)
            return fallback, f"the model's reason was refused by the quality gate: {problem}", "rejected"
        self.refused_in_a_row = 0
        return Explanation(text=text, cited=[cited], source="llm"), None, None


__all__ = ["Explainer", "Facts", "NO_CITATION", "PENDING", "ReasonReply", "plain_reason"]
