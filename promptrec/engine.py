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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from .data import Catalog, InteractionLog
from .knowledge.profile_store import ProfileRecord, ProfileStore, history_key
from .errors import ConfigError, UserInputError
from .explain import PENDING, Explainer
from .intent import Intent, IntentParser
from .knowledge import FeatureStore, UserProfiler, feature_text
from .knowledge.item_text import ItemTextVectors
from .knowledge.new_items import NewItemScorer, fit_new_items
from .knowledge.transfer import TransferConfig
from .llm import LLMClient
from .quality import PROFILE_GATE
from .knowledge.vector_cache import VectorCache
from .rerank import LLMReranker, RerankOutcome, evidence_explanation
from .retrieval import COLD, CandidateRetriever, CollaborativeModel, ItemVectorStore, build_scorers
from .settings import ExplainSettings, FusionSettings, ProfileSettings, RerankSettings, Settings
from .types import (Candidate, ExplanationTotals, History, ProfileResult, Recommendation, RecommendationList,
                    StreamEvent)

Scope = Callable[[], AbstractContextManager]


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


def fit_new_item_source(settings: Settings, interactions: InteractionLog, catalog: Catalog, store: ItemVectorStore,
                        collab: CollaborativeModel | None, cache_dir: Path,
                        features: FeatureStore | None = None) -> NewItemScorer | None:
    """The ``cold`` source (items outside the collaborative index, scored from their text vectors through a
    transfer map; cached in ``cache_dir``), or None when nothing is new, or when neither its fusion weight nor
    a reserved place (``new_items.slot``) uses it. Which text vectors: ``new_items.text``
    (:mod:`promptrec.knowledge.item_text`; ``joined`` reads ``features``)."""
    if collab is None or (settings.fusion.weights.get(COLD, 0) <= 0 and not settings.new_items.slot):
        return None
    config = TransferConfig(**settings.new_items.model_dump(exclude={"neutral_missing", "slot", "text"}),
                            seed=settings.seed)
    text = settings.new_items.text
    model_cache = None
    if text == "model":
        if settings.llm.backend != "llamacpp":
            raise ConfigError("new_items.text=model reads a local GGUF model's hidden states: it needs llm.backend="
                              "llamacpp (or choose new_items.text=raw)")
        from .knowledge.model_vectors import model_vector_cache

        model_cache = model_vector_cache(settings.llm.model, Path(settings.state_dir) / "models", Path(cache_dir) / "vectors",
                                         list(catalog), threads=settings.llm.n_threads)
    source = store if text == "stored" else ItemTextVectors(
        catalog, VectorCache(store.embedder, Path(cache_dir) / "vectors"), features if text == "joined" else None,
        model_cache)
    return fit_new_items(interactions, catalog, collab.items, source, config, cache_dir,
                         settings.new_items.neutral_missing)


def _settled(result: ProfileResult) -> bool:
    """A profile worth keeping: the model's, or the evidence profile that replaced a refused or invalid reply
    (the same at temperature 0 next time); not one that replaced a failed call (server down, deadline)."""
    return result.source == "llm" or not (result.error or "").startswith("model call failed")


def build_retriever(fusion: FusionSettings, store: ItemVectorStore, embedder, catalog: Catalog,
                    collab: CollaborativeModel | None, new_items: NewItemScorer | None = None,
                    ranker=None, new_slot: int | None = None) -> CandidateRetriever:
    return CandidateRetriever(store, embedder, catalog, collab, fusion.weights,
                              pool_depth=getattr(ranker, "pool_depth", None) or fusion.candidate_depth,
                              half_life=fusion.recency_half_life,
                              steering_weights=fusion.steering_weights, new_items=new_items, ranker=ranker,
                              new_slot=new_slot)


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


def build_explainer(explain: ExplainSettings, client: LLMClient | None, catalog: Catalog,
                    features: FeatureStore | None, store: ItemVectorStore | None) -> Explainer:
    """Citations and explanations of the shown items (the model writes them when there is one)."""
    return Explainer(catalog, features, explain, client, store.vectors if store is not None else None)


@dataclass
class Engine:
    """Profile -> retrieve + fuse -> rerank + explain, for any history, over one catalog.

    Build it with :func:`build_engine`. ``profiles`` caches profiles by key (a user id and history);
    ``profile_store`` keeps a known user's model profile on disk, so it is made once per history,
    model and prompt and reused by every later call, chat turn and process.
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
    explainer: Explainer | None = None
    profile_store: ProfileStore | None = None

    def with_fusion(self, weights: Mapping[str, float], pool_depth: int | None = None) -> Engine:
        """The same engine with other fusion weights and pool depth (fitted models and store shared)."""
        fusion = self.fusion.model_copy(update={"weights": dict(weights),
                                                "candidate_depth": pool_depth or self.fusion.candidate_depth})
        retriever = build_retriever(fusion, self.retriever.store, self.retriever.embedder, self.catalog,
                                    self.retriever.collab, self.retriever.new_items, self.retriever.ranker,
                                    self.retriever.new_slot)
        return replace(self, fusion=fusion, retriever=retriever)

    # ----- the stages -----
    def rerank_depth(self, k: int) -> int:
        """How many fused candidates the rerank sees for a top-``k`` answer (``k`` without a rerank)."""
        return max(k, self.rerank_settings.depth) if self.reranker else k

    def understand(self, request: str, model: bool = True) -> Intent:
        """A typed request read into an :class:`Intent` (the model when there is one and ``model``,
        else rules: instant, and what the model's reading is merged with anyway)."""
        return self.intent_parser.parse(request) if model else self.intent_parser.rules.parse(request)

    def needs_model(self, rules: Intent) -> bool:
        """Whether the model should read a request the rules read as ``rules`` (``request.model_reads``)."""
        return self.intent_parser.needs_model(rules)

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
                                        steer=self.retriever.steer(intent), profile=learned_profile, listed=k)
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
        stored = self._stored_profile(key[0], history)
        if stored is not None:
            self.profiles[key] = stored
            return stored
        result = self.profiler.profile(history)
        settled = _settled(result)
        if settled:  # a failed call (server down, deadline) is asked again next time
            self.profiles[key] = result
        # a refused or invalid reply is kept too: at temperature 0 the same history, model and prompt give it again
        if settled and key[0] is not None and self.profile_store is not None:
            self.profile_store.try_append(ProfileRecord(
                user_id=str(key[0]), result=result, history_key=history_key(history.items),
                model_id=self.profiler.client.model_id, template_hash=self.profiler.template.hash))
        return result

    def _stored_profile(self, user_id: str | None, history: History) -> ProfileResult | None:
        """A known user's profile made earlier (by the profile job or another call) from exactly this history,
        with this model and prompt: the model's, or the evidence profile that replaced a refused or invalid
        reply (never one that replaced a failed call); None when there is none."""
        if user_id is None or self.profile_store is None or self.profiler is None or self.profiler.client is None:
            return None
        record = self.profile_store.find(str(user_id), history_key(history.items),
                                         self.profiler.client.model_id, self.profiler.template.hash)
        if record is None or not _settled(record.result):
            return None
        if record.result.rejected and record.result.gate != PROFILE_GATE:
            return None  # refused under other rules: read again (the reply cache answers without the model)
        return record.result

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

    @property
    def reorders(self) -> bool:
        """Whether the model's rerank decides the shown order (``rerank.reorder``)."""
        return self.reranker is not None and self.rerank_settings.reorder

    def recommend(self, history: History, k: int = 10, request: str | None = None, exclude: Sequence[str] = (),
                  like: Sequence[str] = (), user_id: str | None = None, intent: Intent | None = None,
                  scope: Scope = nullcontext) -> RecommendationList:
        """Top-``k`` explained recommendations for ``history``; ``like`` items count as the latest interests.
        A typed ``request`` is read into an intent (unless ``intent`` is given) that steers retrieval.
        The last event of :meth:`recommend_stream`."""
        result = None
        for event in self.recommend_stream(history, k, request, exclude, like, user_id, intent, scope):
            result = event.result if event.kind == "final" else result
        return result

    def recommend_stream(self, history: History, k: int = 10, request: str | None = None,
                         exclude: Sequence[str] = (), like: Sequence[str] = (), user_id: str | None = None,
                         intent: Intent | None = None, scope: Scope = nullcontext,
                         refine: Callable[[], Intent] | None = None) -> Iterator[StreamEvent]:
        """The answer as it is made: a ``list`` event as soon as the order is known (evidence
        explanations, the model's reasons pending), a ``reason`` event per shown item as the model
        writes it, then ``final`` (with the profile and totals).

        The order is the fused one unless ``rerank.reorder`` lets the model's rerank decide it (then
        the list waits for the profile and the rerank). ``scope()`` is entered around every model
        step (the caller's deadline and cache owner), never across a ``yield``.

        **List first, then the model's reading.** When a model reads typed requests, a ``request``
        is first read by the rules (instant) and the list is shown from that reading; then the model
        reads it (``refine()``, by default :meth:`understand`) and, when its reading changes the
        shown items, a second ``list`` event (``revised=True``) replaces the first before any reason
        is written. The model's reading is merged with the rules' (an explicit "not X" is never
        lost), so the first list never shows what the request refused. ``intent`` with ``refine``:
        the caller's own two readings (chat refines the previous turn's intent).
        """
        if k < 1:
            raise UserInputError("k must be at least 1")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        key = (user_id, tuple(history.items))
        steered = history.steered(list(like))
        if intent is None and request:
            t0 = time.perf_counter()
            intent = self.understand(request, model=False)
            if refine is None and self.needs_model(intent):
                refine = lambda: self.understand(request)  # noqa: E731
            timings["intent_s"] = time.perf_counter() - t0
        if self.reorders and refine is not None:  # the rerank's list waits for the model anyway: read first
            t0 = time.perf_counter()
            with scope():
                intent, refine = refine(), None
            timings["intent_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # the list comes before any model call (it is streamed first), so a learned fusion ranks it without
        # the profile signals (missing values, as for a user without a profile)
        candidates = self.candidates(steered, k, request, [*exclude, *like], intent=intent)
        timings["retrieve_s"] = time.perf_counter() - t0
        profile, outcome = None, None
        if self.reorders:
            t0 = time.perf_counter()
            with scope():
                profile = self.profile(history, key)
            timings["profile_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            with scope():
                outcome = self.rerank(candidates, steered, k, request, profile)
            timings["rerank_s"] = time.perf_counter() - t0
        writing = self.explainer is not None and self.explainer.client is not None
        result = self._listed(user_id, candidates, outcome, k, request, profile, intent, steered, writing)
        result.timings = {"list_s": round(time.perf_counter() - start, 4)}
        yield StreamEvent(kind="list", result=result.model_copy(deep=True))
        list_s = result.timings["list_s"]
        if refine is not None:
            t0 = time.perf_counter()
            with scope():
                better = refine()
            timings["intent_model_s"] = time.perf_counter() - t0
            if _reading(better) != _reading(intent):
                intent = better
                revised = self.candidates(steered, k, request, [*exclude, *like], intent=intent)
                shown_before = [r.item_id for r in result.items]
                result = self._listed(user_id, revised, outcome, k, request, profile, intent, steered, writing)
                candidates = revised
                result.timings = {"list_s": list_s}
                if [r.item_id for r in result.items] != shown_before:
                    result.revised = True
                    result.timings["revised_list_s"] = round(time.perf_counter() - start, 4)
                    yield StreamEvent(kind="list", result=result.model_copy(deep=True))
        by_id = {c.item_id: c for c in candidates}
        kinds: Counter = Counter()
        if writing:
            t0 = time.perf_counter()
            shown = [r.item_id for r in result.items]
            for rec in result.items:
                candidate = by_id[rec.item_id]
                cited = rec.cited_history[0] if rec.cited_history else None
                with scope():
                    explanation, note, kind = self.explainer.write(candidate, cited, steered, others=shown)
                kinds[kind] += 1
                prefix = self._request_prefix(candidate, intent)
                rec.explanation = f"{prefix}{explanation.text}"
                rec.cited_history, rec.explained_by = explanation.cited, explanation.source
                rec.explanation_note = note
                yield StreamEvent(kind="reason", item=rec.model_copy(deep=True))
            timings["explain_s"] = time.perf_counter() - t0
        if not self.reorders:
            t0 = time.perf_counter()
            with scope():
                profile = self.profile(history, key)
            result.profile = profile
            timings["profile_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - start
        firsts = {n: v for n, v in result.timings.items() if n in ("list_s", "revised_list_s")}
        result.timings = {n: round(v, 4) for n, v in {**firsts, **timings}.items()}
        result.explanations = _totals(result.items, kinds)
        if writing:
            result.rejected_reasons = kinds["rejected"]
        yield StreamEvent(kind="final", result=result)

    def _listed(self, user_id, candidates: list[Candidate], outcome: RerankOutcome | None, k: int,
                request: str | None, profile: ProfileResult | None, intent: Intent | None, history: History,
                writing: bool) -> RecommendationList:
        """The list as first shown: evidence explanations, the model's reasons pending when it writes them."""
        result = self._assemble(user_id, candidates, outcome, k, request, profile, intent, history)
        if intent is not None:
            titles = {i: self.catalog[i].title for i in [*intent.anchors, *intent.exclude_items] if i in self.catalog}
            result.understood, result.intent = intent.describe(titles), intent.model_dump()
        if writing:
            for rec in result.items:
                rec.explanation_note = PENDING
        result.explanations = _totals(result.items)
        return result

    def _request_prefix(self, candidate: Candidate, intent: Intent | None) -> str:
        """With a request: what of it the item verifiably matches (its catalog genres, years, the
        anchor whose choosers chose it), as the start of its explanation."""
        if intent is None:
            return ""
        parts = intent.matched(self.catalog[candidate.item_id])
        anchor = _anchor_title(self.catalog, intent, candidate)
        if anchor:
            parts.insert(0, f"chosen by people who chose {anchor}")
        return f"Matches your request ({'; '.join(parts)}). " if parts else ""

    def _evidence(self, candidate: Candidate, intent: Intent | None, cited: str | None = None,
                  history: History | None = None):
        """The deterministic explanation, grounded in ``cited`` (the explainer's citation); with a
        request it starts with what of the request the item verifiably matches."""
        if self.explainer is not None and history is not None:
            explanation = self.explainer.evidence(candidate, cited, history)
        else:
            explanation = evidence_explanation(candidate, self.catalog)
        explanation.text = self._request_prefix(candidate, intent) + explanation.text
        return explanation

    def _assemble(self, user_id, candidates: list[Candidate], outcome: RerankOutcome | None, k: int,
                  request: str | None, profile: ProfileResult | None, intent: Intent | None = None,
                  history: History | None = None) -> RecommendationList:
        by_id = {c.item_id: c for c in candidates}
        order = [c.item_id for c in candidates]
        explanations: dict = {}
        ordered_by, fallback, reason, rejected = "fusion", False, None, 0
        refused: dict[str, str] = {}
        if outcome is not None:
            rejected, refused = outcome.rejected, outcome.rejected_reasons
            if outcome.valid:
                order = outcome.order
                ordered_by = "llm_rerank" if self.llm_weight(request) > 0 else "fusion"
                if self.explainer is None or self.explainer.client is None:
                    explanations = outcome.explanations  # the rerank's own (gated) reasons
            else:
                fallback, reason = True, outcome.error
        shown = [by_id[i] for i in order[:k]]
        citations = self.explainer.cite(shown, history) if self.explainer is not None and history is not None else {}
        items = []
        for rank, candidate in enumerate(shown, start=1):
            item_id = candidate.item_id
            explanation = explanations.get(item_id) or self._evidence(candidate, intent, citations.get(item_id),
                                                                       history)
            items.append(Recommendation(
                item_id=item_id, title=candidate.title, rank=rank, score=round(candidate.fused, 4),
                explanation=explanation.text, cited_history=explanation.cited,
                explained_by="llm" if explanation.source == "llm" else "evidence",
                explanation_note=refused.get(item_id) and f"the model's reason was refused: {refused[item_id]}",
            ))
        return RecommendationList(
            user_id=user_id, items=items, ordered_by=ordered_by, fallback=fallback, fallback_reason=reason,
            request=request, profile=profile, rejected_picks=rejected,
            rejected_reasons=sum(item.item_id in refused for item in items),
            model_id=self.client.model_id if self.client else None,
        )


def _reading(intent: Intent | None) -> dict | None:
    """What of a reading decides the list (not who read it, nor what was dropped on the way)."""
    return None if intent is None else intent.model_dump(exclude={"source", "ungrounded", "error"})


def _totals(items: Sequence[Recommendation], kinds: Counter | None = None) -> ExplanationTotals:
    kinds = kinds or Counter()
    return ExplanationTotals(
        llm=sum(r.explained_by == "llm" for r in items), evidence=sum(r.explained_by == "evidence" for r in items),
        rejected=kinds["rejected"], late=kinds["late"], failed=kinds["failed"],
        pending=sum(r.explanation_note == PENDING for r in items),
        distinct_cited=len({c for r in items for c in r.cited_history}),
    )


def _anchor_title(catalog: Catalog, intent: Intent, candidate: Candidate) -> str | None:
    if candidate.scores.get("anchor", 0) > 0 and intent.anchors and intent.anchors[0] in catalog:
        return catalog[intent.anchors[0]].title
    return None


def build_engine(settings: Settings, *, catalog: Catalog, store: ItemVectorStore, embedder,
                 collab: CollaborativeModel | None, client: LLMClient | None, features: FeatureStore | None,
                 profiles: MutableMapping[tuple, ProfileResult] | None = None,
                 profile_store: ProfileStore | None = None, new_items: NewItemScorer | None = None,
                 ranker=None) -> Engine:
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
        profile_store: Profiles on disk to reuse and add to (the product's; the evaluation has its own).
        new_items: The ``cold`` source for items the collaborative model cannot score (:func:`fit_new_item_source`).
        ranker: A learned fusion for the retriever (:func:`promptrec.ranking.product.load_ranker`), or None.
    """
    return Engine(
        catalog=catalog,
        fusion=settings.fusion,
        rerank_settings=settings.rerank,
        retriever=build_retriever(settings.fusion, store, embedder, catalog, collab, new_items, ranker,
                                  settings.new_items.slot),
        profiler=build_profiler(settings.profile, client, catalog),
        reranker=build_reranker(settings.rerank, client, catalog, features, settings.seed),
        client=client,
        intent_parser=IntentParser(catalog, client, settings.request.model_reads),
        profiles={} if profiles is None else profiles,
        explainer=build_explainer(settings.explain, client, catalog, features, store),
        profile_store=profile_store,
    )


__all__ = ["Engine", "build_engine", "build_explainer", "build_profiler", "build_reranker", "build_retriever", "fit_collab",
           "fit_new_item_source",
           "index_records", "user_history"]
