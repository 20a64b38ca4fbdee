"""The one pipeline: history -> profile -> retrieve + fuse -> rerank + explain.

Components never call each other; :class:`Recommender` loads the data and the shared resources
(store, features, model client) and builds its stages with :func:`promptrec.engine.build_engine`,
the factory the evaluation uses too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import cached_property

from . import inputs
from .data import Dataset, load_dataset
from .engine import Engine, build_engine, fit_collab, index_records, user_history
from .errors import UserInputError
from .intent import Intent
from .knowledge import FeatureStore, UserProfiler
from .llm import LLMBackend, LLMClient, make_client
from .rerank import LLMReranker
from .retrieval import CandidateRetriever, CollaborativeModel, ItemVectorStore, make_embedder
from .retrieval.store import make_client as make_chroma_client
from .settings import Settings
from .types import History, ProfileResult, RecommendationList

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
        return fit_collab(self.settings.fusion, self.dataset.interactions, self.settings.dataset_state_dir)

    @cached_property
    def engine(self) -> Engine:
        """The stages, built from the settings by the factory the evaluation uses too."""
        self.ensure_index()
        return build_engine(self.settings, catalog=self.dataset.catalog, store=self.store, embedder=self.embedder,
                            collab=self.collab, client=self.client, features=self.features, profiles=self._profiles)

    @property
    def retriever(self) -> CandidateRetriever:
        return self.engine.retriever

    def understand(self, request: str) -> Intent:
        """A typed request: read by the model when there is one, else (or when it fails) by rules."""
        return self.engine.understand(request)

    @property
    def profiler(self) -> UserProfiler | None:
        return self.engine.profiler

    @property
    def reranker(self) -> LLMReranker | None:
        return self.engine.reranker

    # ----- histories -----
    def history(self, user_id: str | int) -> History:
        """A known user's history (oldest first) with timestamps and ratings. Raises UnknownUser."""
        user = str(user_id)
        log_ = self.dataset.interactions
        if not log_.has_user(user):
            sample = ", ".join(log_.users[:5])
            raise UnknownUser(f"unknown user {user!r}: not in {self.dataset.name} (user ids look like {sample}, ...)")
        return user_history(log_, user)

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
                  exclude: Sequence[str] = (), like: Sequence[str] = (), intent: Intent | None = None) -> RecommendationList:
        """Top-``k`` explained recommendations for a user in the data.

        Args:
            request: Free text that steers retrieval and rerank ("something lighter").
            exclude: Item ids never to recommend.
            like: Item ids to treat as the user's latest interests ("more like X").
            intent: The request already understood (chat refines one across turns); parsed from
                ``request`` when None.
        """
        user = inputs.user_id(user_id)
        k, request = inputs.top_k(k), inputs.request_text(request)
        exclude, like = inputs.item_entries(exclude, "exclude"), inputs.item_entries(like, "like")
        return self._run(user, self.history(user), k, request, exclude, like, intent)

    def recommend_for_history(self, items: Sequence[str | int], k: int = 10, request: str | None = None,
                              exclude: Sequence[str] = (), ratings: dict[str, float] | None = None,
                              intent: Intent | None = None) -> RecommendationList:
        """Recommendations for someone not in the data, from items (ids or titles) they liked, oldest first.

        ``items`` is a list; one string is taken as one item (id or title).
        """
        k, request = inputs.top_k(k), inputs.request_text(request)
        exclude, entries = inputs.item_entries(exclude, "exclude"), inputs.item_entries(items, "items")
        history = History(items=self.resolve_items(entries) if entries else [], ratings=ratings or {})
        return self._run(None, history, k, request, exclude, (), intent)

    def _run(self, user_id: str | None, history: History, k: int, request, exclude, like,
             intent: Intent | None = None) -> RecommendationList:
        return self.engine.recommend(history, inputs.top_k(k), request, exclude, like, user_id=user_id, intent=intent)

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
        from .knowledge import ItemFeatureExtractor

        catalog = self.dataset.catalog
        if rebuild:
            self.store.client.delete_collection(self.store.name)
            self.__dict__.pop("store", None)
            self.__dict__.pop("engine", None)
        report: dict = {"items": len(catalog)}
        if features:
            counts = self.dataset.interactions.item_counts
            ranked = sorted(catalog, key=lambda it: (-int(counts.get(it.item_id, 0)), it.item_id))
            chosen = ranked if features < 0 else ranked[:features]
            if self.client is None:
                raise UserInputError("feature extraction needs a language model; build the Recommender with "
                                     "llm=None (the configured model) or a backend, not llm=False")
            extractor = ItemFeatureExtractor(self.client, self.features)
            advance = progress("item features", len(chosen)) if progress else None
            report["features"] = extractor.run(chosen, advance).model_dump()
        records = index_records(catalog, self.features)
        advance = progress("embedding", len(records)) if progress else None
        report["embedded"] = self.store.upsert(records, progress=advance)
        report["stored"] = self.store.count()
        report["with_features"] = len(self.features)
        return report
