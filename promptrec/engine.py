"""The stages of a recommender, built from the settings by one factory.

:func:`build_engine` is the only place that turns settings into stages: retrieval + fusion
(:class:`~promptrec.settings.FusionSettings`), the user profile
(:class:`~promptrec.settings.ProfileSettings`) and the LLM rerank + explanation
(:class:`~promptrec.settings.RerankSettings`). :class:`~promptrec.pipeline.Recommender` builds
its engine with it over the whole dataset; the evaluation builds one per split stage over the data
of that stage. Both then call the same :meth:`Engine.candidates`, :meth:`Engine.profile` and
:meth:`Engine.rerank`, so what is measured is what ships.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .data import Catalog, InteractionLog
from .errors import UserInputError
from .intent import Intent, IntentParser
from .knowledge import FeatureStore, UserProfiler, feature_text
from .llm import LLMClient
from .rerank import LLMReranker, RerankOutcome, evidence_explanation
from .retrieval import CandidateRetriever, CollaborativeModel, ItemVectorStore, build_scorers
from .settings import FusionSettings, ProfileSettings, RerankSettings, Settings
from .types import Candidate, History, ProfileResult, Recommendation, RecommendationList


def user_history(log: InteractionLog, user_id: str) -> History:
    """A user's history in ``log`` (oldest first) with timestamps and ratings. Raises KeyError."""
    return History(items=log.history(user_id), timestamps=log.timestamps(user_id), ratings=log.ratings(user_id))


def index_records(catalog: Catalog, features: FeatureStore | None) -> list[tuple[str, str, dict]]:
    """The (item id, text, metadata) records the vector store is built from: each item's own text,
    plus the model's features once they exist."""
    return [(it.item_id, feature_text(it, features.get(it.item_id) if features else None), {"title": it.title})
            for it in catalog]


def fit_collab(fusion: FusionSettings, interactions: InteractionLog, cache_dir: Path) -> CollaborativeModel:
    """The collaborative scorers of every weighted source, fitted on ``interactions`` (cached in ``cache_dir``)."""
    model = CollaborativeModel(build_scorers(fusion), fusion.min_item_support)
    return model.fit_cached(interactions, cache_dir)


def build_retriever(fusion: FusionSettings, store: ItemVectorStore, embedder, catalog: Catalog,
                    collab: CollaborativeModel | None, ranker=None) -> CandidateRetriever:
    return CandidateRetriever(store, embedder, catalog, collab, fusion.weights,
                              pool_depth=fusion.candidate_depth, half_life=fusion.recency_half_life,
                              steering_weights=fusion.steering_weights, ranker=ranker)


def build_profiler(profile: ProfileSettings, client: LLMClient | None, catalog: Catalog) -> UserProfiler | None:
    """The profiler, or None when there is no model or profiles are off."""
    if client is None or not profile.enabled:
        return None
    return UserProfiler(client, catalog, profile.token_budget)


def build_reranker(rerank: RerankSettings, client: LLMClient | None, catalog: Catalog,
                   features: FeatureStore | None, seed: int) -> LLMReranker | None:
    """The reranker, or None when there is no model or the rerank is off."""
    if client is None or not rerank.enabled:
        return None
    return LLMReranker(client, catalog, features, rerank.llm_weight, rerank.history_items, rerank.permutations, seed)


@dataclass
class Engine:
    """Profile -> retrieve + fuse -> rerank + explain, for any history, over one catalog.

    Build it with :func:`build_engine`. ``profiles`` caches profiles by key (a user id and history).
    """

    catalog: Catalog
    fusion: FusionSettings
    rerank_settings: RerankSettings
    retriever: CandidateRetriever
    profiler: UserProfiler | None
    reranker: LLMReranker | None
    client: LLMClient | None
    intent_parser: IntentParser
    profiles: MutableMapping[tuple, ProfileResult] = field(default_factory=dict)

    def with_fusion(self, weights: Mapping[str, float], pool_depth: int | None = None) -> Engine:
        """The same engine with other fusion weights and pool depth (fitted models and store shared)."""
        fusion = self.fusion.model_copy(update={"weights": dict(weights),
                                                "candidate_depth": pool_depth or self.fusion.candidate_depth})
        retriever = build_retriever(fusion, self.retriever.store, self.retriever.embedder, self.catalog,
                                    self.retriever.collab, self.retriever.ranker)
        return replace(self, fusion=fusion, retriever=retriever)

    # ----- the stages -----
    def rerank_depth(self, k: int) -> int:
        """How many fused candidates the rerank sees for a top-``k`` answer (``k`` without a rerank)."""
        return max(k, self.rerank_settings.depth) if self.reranker else k

    def understand(self, request: str) -> Intent:
        """A typed request read into an :class:`Intent` (the model when there is one, else rules)."""
        return self.intent_parser.parse(request)

    def candidates(self, history: History, k: int, request: str | None = None, exclude: Sequence[str] = (),
                   depth: int | None = None, intent: Intent | None = None,
                   profile: ProfileResult | None = None) -> list[Candidate]:
        """The fused candidates for a top-``k`` answer; with ``depth``, that many (deeper lists get
        evidence only for the top :meth:`rerank_depth`, the ones the rerank sees). With ``intent``,
        the request steers retrieval and no candidate violates its hard filters or exclusions. A
        model-made ``profile`` feeds a learned fusion's profile signals."""
        shown = self.rerank_depth(k)
        learned_profile = profile.profile if profile is not None and profile.source == "llm" else None
        found = self.retriever.retrieve(history, depth or shown, request, exclude, evidence_for=shown,
                                        steer=self.retriever.steer(intent), profile=learned_profile)
        if intent is None:
            return found
        return [c for c in found if intent.allows(self.catalog[c.item_id])]

    def profile(self, history: History, key: tuple | None = None) -> ProfileResult | None:
        """The user's profile (None without a profiler or a history); cached under ``key``."""
        if self.profiler is None or not history.items:
            return None
        if key is None:
            return self.profiler.profile(history)
        if key in self.profiles:
            return self.profiles[key]
        result = self.profiler.profile(history)
        if result.source == "llm" or not (result.error or "").startswith("model call failed"):
            self.profiles[key] = result  # a failed call (server down, deadline) is asked again next time
        return result

    def llm_weight(self, request: str | None) -> float:
        """The model's share of the final order (a typed request gets its own weight)."""
        return self.rerank_settings.request_llm_weight if request else self.rerank_settings.llm_weight

    def rerank(self, candidates: Sequence[Candidate], history: History, k: int, request: str | None = None,
               profile: ProfileResult | None = None) -> RerankOutcome | None:
        """The model's order and explanations of ``candidates`` (None without a reranker or candidates)."""
        if self.reranker is None or not candidates:
            return None
        return self.reranker.rerank(candidates, history.items, k, profile.profile if profile else None, request,
                                    history.ratings, llm_weight=self.llm_weight(request))

    def recommend(self, history: History, k: int = 10, request: str | None = None, exclude: Sequence[str] = (),
                  like: Sequence[str] = (), user_id: str | None = None, intent: Intent | None = None) -> RecommendationList:
        """Top-``k`` explained recommendations for ``history``; ``like`` items count as the latest interests.
        A typed ``request`` is read into an intent (unless ``intent`` is given) that steers retrieval."""
        if k < 1:
            raise UserInputError("k must be at least 1")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        profile = self.profile(history, (user_id, tuple(history.items)))
        timings["profile_s"] = time.perf_counter() - start
        steered = history.steered(list(like))
        if intent is None and request:
            t0 = time.perf_counter()
            intent = self.understand(request)
            timings["intent_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        candidates = self.candidates(steered, k, request, [*exclude, *like], intent=intent, profile=profile)
        timings["retrieve_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        outcome = self.rerank(candidates, steered, k, request, profile)
        result = self._assemble(user_id, candidates, outcome, k, request, profile, intent)
        timings["rerank_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - start
        result.timings = {n: round(v, 4) for n, v in timings.items()}
        if intent is not None:
            titles = {i: self.catalog[i].title for i in [*intent.anchors, *intent.exclude_items] if i in self.catalog}
            result.understood, result.intent = intent.describe(titles), intent.model_dump()
        return result

    def _evidence(self, candidate: Candidate, intent: Intent | None):
        """The deterministic explanation; with a request, it starts with what of the request the item
        verifiably matches (its catalog genres, years, the anchor whose choosers chose it)."""
        explanation = evidence_explanation(candidate, self.catalog)
        if intent is None:
            return explanation
        parts = intent.matched(self.catalog[candidate.item_id])
        anchor = _anchor_title(self.catalog, intent, candidate)
        if anchor:
            parts.insert(0, f"chosen by people who chose {anchor}")
        if parts:
            explanation.text = f"Matches your request ({'; '.join(parts)}). {explanation.text}"
        return explanation

    def _assemble(self, user_id, candidates: list[Candidate], outcome: RerankOutcome | None, k: int,
                  request: str | None, profile: ProfileResult | None, intent: Intent | None = None) -> RecommendationList:
        by_id = {c.item_id: c for c in candidates}
        order = [c.item_id for c in candidates]
        explanations: dict = {}
        ordered_by, fallback, reason, rejected = "fusion", False, None, 0
        refused: dict[str, str] = {}
        if outcome is not None:
            rejected, refused = outcome.rejected, outcome.rejected_reasons
            if outcome.valid:
                order, explanations = outcome.order, outcome.explanations
                ordered_by = "llm_rerank" if self.llm_weight(request) > 0 else "fusion"
            else:
                fallback, reason = True, outcome.error
        items = []
        for rank, item_id in enumerate(order[:k], start=1):
            candidate = by_id[item_id]
            explanation = explanations.get(item_id) or self._evidence(candidate, intent)
            items.append(Recommendation(
                item_id=item_id, title=candidate.title, rank=rank, score=round(candidate.fused, 4),
                explanation=explanation.text, cited_history=explanation.cited,
                explained_by="llm" if explanation.source == "llm" else "evidence",
            ))
        return RecommendationList(
            user_id=user_id, items=items, ordered_by=ordered_by, fallback=fallback, fallback_reason=reason,
            request=request, profile=profile, rejected_picks=rejected,
            rejected_reasons=sum(item.item_id in refused for item in items),
            model_id=self.client.model_id if self.client else None,
        )


def _anchor_title(catalog: Catalog, intent: Intent, candidate: Candidate) -> str | None:
    if candidate.scores.get("anchor", 0) > 0 and intent.anchors and intent.anchors[0] in catalog:
        return catalog[intent.anchors[0]].title
    return None


def build_engine(settings: Settings, *, catalog: Catalog, store: ItemVectorStore, embedder,
                 collab: CollaborativeModel | None, client: LLMClient | None, features: FeatureStore | None,
                 profiles: MutableMapping[tuple, ProfileResult] | None = None, ranker=None) -> Engine:
    """Every stage from the settings: the product and the evaluation both build their engine here.

    Args:
        settings: The stage configurations (``fusion``, ``profile``, ``rerank``) and the seed.
        catalog: The items that can be recommended.
        store: Their vectors.
        embedder: The store's embedder (embeds typed requests).
        collab: Collaborative scorers fitted on the interactions available (:func:`fit_collab`).
        client: The language model client, or None (no profile, no rerank).
        features: Item features for the rerank's item descriptions.
        profiles: A profile cache to share (the product keeps one per recommender).
        ranker: A learned fusion for the retriever (:func:`promptrec.ranking.product.load_ranker`), or None.
    """
    return Engine(
        catalog=catalog,
        fusion=settings.fusion,
        rerank_settings=settings.rerank,
        retriever=build_retriever(settings.fusion, store, embedder, catalog, collab, ranker),
        profiler=build_profiler(settings.profile, client, catalog),
        reranker=build_reranker(settings.rerank, client, catalog, features, settings.seed),
        client=client,
        intent_parser=IntentParser(catalog, client),
        profiles={} if profiles is None else profiles,
    )


__all__ = ["Engine", "build_engine", "build_profiler", "build_reranker", "build_retriever", "fit_collab",
           "index_records", "user_history"]
