"""The one pipeline: history -> profile -> retrieve + fuse -> rerank + explain.

Components never call each other; :class:`Recommender` wires them from :class:`Settings`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import cached_property

from .data import Dataset, load_dataset
from .errors import UserInputError
from .knowledge import FeatureStore, UserProfiler
from .llm import LLMBackend, LLMClient, make_client
from .rerank import LLMReranker, evidence_explanation
from .retrieval import CandidateRetriever, CollaborativeModel, ItemVectorStore, build_scorers, make_embedder
from .retrieval.store import make_client as make_chroma_client
from .settings import Settings
from .types import Candidate, ProfileResult, Recommendation, RecommendationList

log = logging.getLogger(__name__)


class UnknownUser(UserInputError, KeyError):
    """A user id that is not in the interaction data."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownItems(UserInputError):
    """Ad-hoc history entries that match no catalog item."""


class Recommender:
    """Recommendations for users in the data, or for an ad-hoc history.

    Args:
        settings: Configuration (defaults come from ``PROMPTREC_*`` environment variables).
        dataset: A loaded dataset; loaded from the settings when None.
        llm: A backend or client to use; ``None`` builds the one the settings name on first use;
            ``False`` runs without a language model (fused order, evidence explanations).
        embedder: An embedder to use instead of the configured one.
        chroma_client: A Chroma client to use instead of the configured one.

    Example:
        >>> rec = Recommender()                                   # doctest: +SKIP
        >>> rec.recommend("1", k=5).items[0].explanation          # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        dataset: Dataset | None = None,
        llm: LLMBackend | LLMClient | bool | None = None,
        embedder=None,
        chroma_client=None,
    ) -> None:
        self.settings = settings or Settings()
        self._dataset = dataset
        self._llm = llm
        self._embedder = embedder
        self._chroma_client = chroma_client
        self._profiles: dict[tuple, ProfileResult] = {}

    # ----- components, built on first use -----
    @cached_property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = load_dataset(self.settings.dataset, self.settings.data_dir, self.settings.download)
            for report in self._dataset.reports:
                if report.dropped:
                    log.warning("%s", report)
        return self._dataset

    @cached_property
    def embedder(self):
        return self._embedder or make_embedder(self.settings.embedding.model, self.settings.embedding.batch_size)

    @cached_property
    def store(self) -> ItemVectorStore:
        client = self._chroma_client or make_chroma_client(
            None if self.settings.store.url else self.settings.dataset_state_dir / "chroma", self.settings.store.url
        )
        return ItemVectorStore(client, self.embedder, self.settings.store.collection)

    @cached_property
    def features(self) -> FeatureStore:
        return FeatureStore(self.settings.dataset_state_dir / "features.jsonl")

    @cached_property
    def client(self) -> LLMClient | None:
        if self._llm is False:
            return None
        if isinstance(self._llm, LLMClient):
            return self._llm
        return make_client(self.settings, self._llm or None)

    @cached_property
    def collab(self) -> CollaborativeModel:
        fusion = self.settings.fusion
        scorers = build_scorers(fusion)
        model = CollaborativeModel(scorers, fusion.min_item_support)
        return model.fit_cached(self.dataset.interactions, self.settings.dataset_state_dir)

    @cached_property
    def retriever(self) -> CandidateRetriever:
        self.ensure_index()
        fusion = self.settings.fusion
        return CandidateRetriever(
            self.store, self.embedder, self.dataset.catalog, self.collab, fusion.weights,
            pool_depth=fusion.candidate_depth, half_life=fusion.recency_half_life,
        )

    @cached_property
    def profiler(self) -> UserProfiler:
        return UserProfiler(self.client, self.dataset.catalog, self.settings.profile.token_budget)

    @cached_property
    def reranker(self) -> LLMReranker | None:
        if self.client is None or not self.settings.rerank.enabled:
            return None
        rerank = self.settings.rerank
        return LLMReranker(self.client, self.dataset.catalog, self.features, rerank.llm_weight,
                           rerank.history_items, rerank.permutations, self.settings.seed)

    # ----- histories -----
    def history(self, user_id: str | int) -> tuple[list[str], list[int], dict[str, float]]:
        """A known user's history (oldest first), timestamps and ratings. Raises UnknownUser."""
        user = str(user_id)
        log_ = self.dataset.interactions
        if not log_.has_user(user):
            sample = ", ".join(log_.users[:5])
            raise UnknownUser(f"unknown user {user!r}: not in {self.dataset.name} (user ids look like {sample}, ...)")
        return log_.history(user), log_.timestamps(user), log_.ratings(user)

    def resolve_items(self, entries: Sequence[str | int]) -> list[str]:
        """Item ids for a list of ids or titles. Raises UnknownItems naming every entry not found."""
        found, missing = [], []
        for entry in entries:
            item = self.dataset.catalog.find(str(entry))
            (found.append(item.item_id) if item else missing.append(str(entry)))
        if missing:
            raise UnknownItems(f"no catalog item matches: {', '.join(repr(m) for m in missing)}")
        return list(dict.fromkeys(found))

    # ----- the pipeline -----
    def recommend(self, user_id: str | int, k: int = 10, request: str | None = None,
                  exclude: Sequence[str] = (), like: Sequence[str] = ()) -> RecommendationList:
        """Top-``k`` explained recommendations for a user in the data.

        Args:
            request: Free text that steers retrieval and rerank ("something lighter").
            exclude: Item ids never to recommend.
            like: Item ids to treat as the user's latest interests ("more like X").
        """
        history, times, ratings = self.history(user_id)
        return self._run(str(user_id), history, times, ratings, k, request, exclude, like)

    def recommend_for_history(self, items: Sequence[str | int], k: int = 10, request: str | None = None,
                              exclude: Sequence[str] = (), ratings: dict[str, float] | None = None) -> RecommendationList:
        """Recommendations for someone not in the data, from items (ids or titles) they liked, oldest first."""
        history = self.resolve_items(items) if items else []
        return self._run(None, history, None, ratings or {}, k, request, exclude, ())

    def _profile(self, key: tuple, history: list[str], ratings: dict[str, float]) -> ProfileResult | None:
        if not self.settings.profile.enabled or not history:
            return None
        if key in self._profiles:
            return self._profiles[key]
        result = self.profiler.profile(history, ratings)
        if result.source == "llm" or not (result.error or "").startswith("model call failed"):
            self._profiles[key] = result  # a failed call (server down, deadline) is asked again next time
        return result

    def _run(self, *args) -> RecommendationList:
        # one deadline shared by every model call of this request (profile and rerank); building the
        # index on first use is not a model call and happens before the clock starts
        self.retriever  # noqa: B018
        with self.client.deadline(self.settings.deadline_s) if self.client else nullcontext():
            return self._serve(*args)

    def _serve(self, user_id, history, times, ratings, k, request, exclude, like) -> RecommendationList:
        if k < 1:
            raise ValueError("k must be at least 1")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        profile = self._profile((user_id, tuple(history)), history, ratings) if self.client else None
        timings["profile_s"] = time.perf_counter() - start
        steered = [*history, *[i for i in like if i not in history]]
        steered_times = None if times is None or like else times
        t0 = time.perf_counter()
        depth = max(k, self.settings.rerank.depth) if self.reranker else k
        candidates = self.retriever.retrieve(steered, steered_times, depth, request, [*exclude, *like])
        timings["retrieve_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = self._rerank_and_explain(user_id, candidates, steered, ratings, k, request, profile)
        timings["rerank_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - start
        result.timings = {n: round(v, 4) for n, v in timings.items()}
        return result

    def _rerank_and_explain(self, user_id, candidates: list[Candidate], history, ratings, k, request, profile):
        by_id = {c.item_id: c for c in candidates}
        order = [c.item_id for c in candidates]
        explanations: dict = {}
        ordered_by, fallback, reason, rejected = "fusion", False, None, 0
        refused: dict[str, str] = {}
        if self.reranker and candidates:
            weight = self.settings.rerank.request_llm_weight if request else self.reranker.llm_weight
            outcome = self.reranker.rerank(candidates, history, k, profile.profile if profile else None,
                                           request, ratings, llm_weight=weight)
            rejected, refused = outcome.rejected, outcome.rejected_reasons
            if outcome.valid:
                order, explanations = outcome.order, outcome.explanations
                ordered_by = "llm_rerank" if weight > 0 else "fusion"
            else:
                fallback, reason = True, outcome.error
        items = []
        for rank, item_id in enumerate(order[:k], start=1):
            candidate = by_id[item_id]
            explanation = explanations.get(item_id) or evidence_explanation(candidate, self.dataset.catalog)
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

    # ----- indexing -----
    def ensure_index(self) -> None:
        """Embed the catalog from its raw text when the vector store is missing items (fast; no model)."""
        if self.store.count() < len(self.dataset.catalog):
            log.info("vector store has %d of %d items; embedding the rest", self.store.count(), len(self.dataset.catalog))
            self.index(features=0)

    def index(self, features: int = 0, rebuild: bool = False,
              progress: Callable[[str, int], Callable[[int], None]] | None = None) -> dict:
        """Build the vector store from item text, then extract features for the ``features`` most
        popular items without them and re-embed those items. Resumable: finished work is kept.

        Args:
            features: How many items (most popular first) should have model features; 0 = none,
                -1 = all.
            rebuild: Drop the vector store first.
            progress: ``progress(label, total)`` returns an ``advance(n)`` callback.
        """
        from .knowledge import ItemFeatureExtractor, feature_text

        catalog = self.dataset.catalog
        if rebuild:
            self.store.client.delete_collection(self.store.name)
            self.__dict__.pop("store", None)
        report: dict = {"items": len(catalog)}
        if features:
            counts = self.dataset.interactions.item_counts
            ranked = sorted(catalog, key=lambda it: (-int(counts.get(it.item_id, 0)), it.item_id))
            chosen = ranked if features < 0 else ranked[:features]
            if self.client is None:
                raise RuntimeError("feature extraction needs a language model")
            extractor = ItemFeatureExtractor(self.client, self.features)
            advance = progress("item features", len(chosen)) if progress else None
            report["features"] = extractor.run(chosen, advance).model_dump()
        records = [(it.item_id, feature_text(it, self.features.get(it.item_id)), {"title": it.title}) for it in catalog]
        advance = progress("embedding", len(records)) if progress else None
        report["embedded"] = self.store.upsert(records, progress=advance)
        report["stored"] = self.store.count()
        report["with_features"] = len(self.features)
        return report
