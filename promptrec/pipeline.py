"""The one pipeline: history -> profile -> retrieve + fuse -> rerank + explain.

Components never call each other; :class:`Recommender` loads the data and the shared resources
(store, features, model client) and builds its stages with :func:`promptrec.engine.build_engine`,
the factory the evaluation uses too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from functools import cached_property
from pathlib import Path

from filelock import Timeout

from . import inputs
from .data import Dataset, load_dataset
from .knowledge.profile_store import ProfileStore
from .engine import Engine, build_engine, fit_collab, fit_new_item_source, index_records, user_history
from .errors import UserInputError
from .intent import Intent
from .knowledge import FeatureStore, UserProfiler
from .llm import LLMBackend, LLMClient, make_client
from .llm.cache import cache_owner
from .llm.deadline import Deadline, within
from .privacy import ForgetReport, forget_user, user_tag
from .rerank import LLMReranker
from .retrieval import CandidateRetriever, CollaborativeModel, ItemVectorStore, make_embedder
from .retrieval.store import make_client as make_chroma_client
from .settings import Settings
from .state import DatasetState, acquire
from .types import History, ProfileResult, RecommendationList, StreamEvent

log = logging.getLogger(__name__)
INDEX_WAIT_S = 3600.0  # how long a first run waits for another process embedding the same catalog


def _last(events: Iterator[StreamEvent], on_event: Callable[[StreamEvent], None] | None) -> RecommendationList:
    """The final list of a stream, passing every event to ``on_event`` on the way."""
    final = None
    for event in events:
        if on_event is not None:
            on_event(event)
        if event.kind == "final":
            final = event.result
    return final


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
    def state(self) -> DatasetState:
        """Where this dataset's derived state lives (keyed by its identity, never in a data folder)."""
        return DatasetState.for_dataset(self.settings.state_dir, self.dataset)

    @cached_property
    def embedder(self):
        return self._embedder or make_embedder(self.settings.embedding.model, self.settings.embedding.batch_size)

    @cached_property
    def store(self) -> ItemVectorStore:
        local = None if self.settings.store.url else self.state.chroma
        client = self._chroma_client or make_chroma_client(local, self.settings.store.url)
        lock = self.state.root / "store.lock"
        return ItemVectorStore(client, self.embedder, self.settings.store.collection, lock_path=lock,
                               exact_max_items=self.settings.store.exact_max_items)

    @cached_property
    def features(self) -> FeatureStore:
        """The item features of the model that answers here (its own store, ``DatasetState.features_for``):
        the configured model's when the model is off (``llm=False``)."""
        from .knowledge.stores import product_feature_store
        from .llm.identity import configured_model_id

        # the configured model's id without loading it (the same id its backend reports)
        model_id = configured_model_id(self.settings) if self._llm in (None, False) else self.client.model_id
        return product_feature_store(self.state, model_id, self.dataset.catalog, self.settings.features.style)

    @cached_property
    def profile_store(self) -> ProfileStore:
        """Profiles made earlier (by the profile job or an earlier call), reused for the same history,
        model and prompt."""
        return ProfileStore(self.state.profiles)

    @cached_property
    def client(self) -> LLMClient | None:
        if self._llm is False:
            return None
        if isinstance(self._llm, LLMClient):
            return self._llm
        return make_client(self.settings, self._llm or None)

    @cached_property
    def collab(self) -> CollaborativeModel:
        return fit_collab(self.settings.fusion, self.dataset.interactions, self.state.collab)

    @cached_property
    def new_items(self):
        """The ``cold`` source: catalog items without (enough) interactions, scored from their text."""
        self.ensure_index()
        return fit_new_item_source(self.settings, self.dataset.interactions, self.dataset.catalog, self.store,
                                   self.collab, self.state.collab, self.features)

    @cached_property
    def engine(self) -> Engine:
        """The stages, built from the settings by the factory the evaluation uses too."""
        self.ensure_index()
        return build_engine(self.settings, catalog=self.dataset.catalog, store=self.store, embedder=self.embedder,
                            collab=self.collab, client=self.client, features=self.features, profiles=self._profiles,
                            profile_store=self.profile_store, new_items=self.new_items, ranker=self.ranker)

    @cached_property
    def ranker(self):
        """The learned fusion of this dataset (``fusion.learned``): with ``auto``, the model
        :meth:`fit_fusion` saved when it exists, matches these signals and won on validation, else None
        (the weighted sum; a model made for other signals is logged and ignored); ``on`` raises a
        :class:`~promptrec.ranking.learned.FusionModelError` instead; ``off``: None."""
        mode = self.settings.fusion.learned
        if mode == "off":
            return None
        from .ranking.learned import FusionModelError
        from .ranking.product import MODEL_FILE, load_ranker

        path = self.state.root / MODEL_FILE
        if not path.exists():  # (no signals built, nothing embedded)
            if mode == "on":
                raise FusionModelError(f"fusion.learned is 'on' but there is no {path}; run Recommender.fit_fusion() "
                                       "(promptrec fit-fusion) or set fusion.learned to auto")
            return None
        try:
            ranker = load_ranker(path, self._signal_builder(self.collab, self.dataset.interactions, path))
        except FusionModelError as err:
            if mode == "on":
                raise
            log.warning("learned fusion not used: %s", err)
            return None
        if ranker is None and mode == "on":
            raise FusionModelError(f"fusion.learned is 'on' but the model in {path} did not beat the weighted sum on "
                                   "validation; retrain it (promptrec fit-fusion) or set fusion.learned to auto")
        return ranker

    def _knowledge_features(self, knowledge_model: str | None) -> dict:
        """Item features of ``knowledge_model`` (a model id, as the batch job stored them), else of the product's store."""
        from .ranking.product import features_of

        store = (FeatureStore(self.state.features_for(knowledge_model, self.settings.features.style)) if knowledge_model
                 else self.features)
        return features_of(store)

    def _signal_builder(self, collab, log_, model_path=None):
        import json

        from .knowledge.vector_cache import VectorCache
        from .ranking.signals import ItemKnowledge, SignalBuilder

        knowledge_model = model_vectors = None
        if model_path is not None and model_path.exists():
            try:
                metadata = json.loads(model_path.read_text()).get("metadata", {})
                knowledge_model, model_vectors = metadata.get("knowledge_model"), metadata.get("model_vectors")
            except (OSError, ValueError, AttributeError):
                knowledge_model = model_vectors = None  # an unreadable file is refused by the loader itself
        vectors = VectorCache(self.embedder, self.state.root / "vectors")
        knowledge = ItemKnowledge.build(self.dataset.catalog, self._knowledge_features(knowledge_model), vectors, log_)
        if model_vectors:
            knowledge.model_vectors = self._cached_model_vectors(str(model_vectors))
        return SignalBuilder(collab, knowledge, vectors, self.settings.fusion.recency_half_life)

    def _cached_model_vectors(self, name: str) -> dict:
        """The model vectors ``fit_fusion(model_vectors=...)`` read, from the state dir (the model is not loaded)."""
        from .errors import ModelError
        from .knowledge.model_vectors import CachedModelVectors, cached_model_vector_map
        from .ranking.learned import FusionModelError
        from .knowledge.vector_cache import VectorCache

        folder = self.state.root / "vectors"
        try:
            found = cached_model_vector_map(list(self.dataset.catalog), VectorCache(CachedModelVectors(name, folder), folder))
        except ModelError as err:
            raise FusionModelError(f"the learned fusion reads model vectors: {err}") from None
        if not found:
            raise FusionModelError(f"the learned fusion reads the model vectors {name}, but none of this catalog's items "
                                   f"has one under {folder}; refit it (promptrec fit-fusion --model-vectors MODEL)")
        return found

    def _read_model_vectors(self, model_vectors, progress=None) -> tuple[dict, str]:
        """Item id -> the model's own centred vector of every catalog item (read once, cached under the state dir),
        and the reader's name. ``model_vectors``: a model spec (small | medium | quality | a .gguf path) or a
        reader with the embedder shape (``name``, ``dimension``, ``embed``)."""
        from .knowledge.model_vectors import ModelVectors, model_vector_map
        from .knowledge.vector_cache import VectorCache

        reader = model_vectors
        if isinstance(model_vectors, str):
            reader = ModelVectors(model_vectors, Path(self.settings.state_dir) / "models", threads=self.settings.llm.n_threads)
        items = list(self.dataset.catalog)
        advance = progress(f"model vectors of the catalog ({reader.name})", len(items)) if progress else None
        found = model_vector_map(items, VectorCache(reader, self.state.root / "vectors"), progress=advance)
        return found, reader.name

    def fit_fusion(self, folds: int = 3, kind: str | None = None, params: dict | None = None,
                   knowledge_model: str | None = None,
                   progress: Callable[[str, int], Callable[[int], None]] | None = None,
                   model_vectors=None):
        """Train the learned fusion on this dataset (every user; fold ``n`` holds out each user's
        ``n``-th most recent item) and save it under the dataset state; the product uses it from the
        next engine on when it beat the weighted sum in cross-validation (see :mod:`promptrec.ranking.product`).

        Args:
            kind: ``linear`` or ``lightgbm`` (default: :data:`promptrec.ranking.product.DEFAULT_KIND`, the
                learner chosen on Protocol A validation).
            knowledge_model: Model id whose batch-made item features feed the feature signals
                (default: the product's feature store).
            model_vectors: A local model (small | medium | quality | a .gguf path) whose own vectors of every
                catalog item's title + genres feed the ``model_sim`` signals: read once (one forward pass per
                item, cached under the state dir); the product then ranks with the cached vectors, without
                loading that model. None: those signals are missing.
        Returns:
            The fitted :class:`~promptrec.ranking.learned.LearnedFusion` (its ``metadata`` holds the validation result).
        """
        from .engine import build_retriever
        from .ranking.product import DEFAULT_KIND, fit_product_fusion
        from .state import content_digest

        self.ensure_index()
        vectors, vectors_name = self._read_model_vectors(model_vectors, progress) if model_vectors else ({}, None)
        model = fit_product_fusion(
            fusion_settings=self.settings.fusion, log=self.dataset.interactions, catalog=self.dataset.catalog,
            store=self.store, embedder=self.embedder, features=self._knowledge_features(knowledge_model),
            state_root=self.state.root, dataset_sha256=content_digest(self.dataset), fit_collab=fit_collab,
            build_retriever=build_retriever, folds=folds, kind=kind or DEFAULT_KIND, params=params, seed=self.settings.seed,
            knowledge_model=knowledge_model, progress=progress, model_vectors=vectors, model_vectors_name=vectors_name)
        for name in ("ranker", "engine"):
            self.__dict__.pop(name, None)
        return model

    @property
    def retriever(self) -> CandidateRetriever:
        return self.engine.retriever

    def understand(self, request: str, model: bool = True) -> Intent:
        """A typed request: read by the model when there is one and ``model``, else (or when it fails) by rules."""
        return self.engine.understand(request, model)

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
                  exclude: Sequence[str] = (), like: Sequence[str] = (), intent: Intent | None = None,
                  on_event: Callable[[StreamEvent], None] | None = None,
                  refine: Callable[[], Intent] | None = None) -> RecommendationList:
        """Top-``k`` explained recommendations for a user in the data.

        Args:
            request: Free text that steers retrieval ("something lighter").
            exclude: Item ids never to recommend.
            like: Item ids to treat as the user's latest interests ("more like X").
            intent: The request already understood (chat refines one across turns); parsed from
                ``request`` when None.
            on_event: Called with each :class:`~promptrec.types.StreamEvent` as it happens (the
                list at once, then each reason); see :meth:`recommend_stream`.
            refine: With ``intent``: the model's reading of the request, asked after the list from
                ``intent`` is shown (see :meth:`Engine.recommend_stream <promptrec.engine.Engine.recommend_stream>`).
        """
        return _last(self.recommend_stream(user_id, k, request, exclude, like, intent, refine), on_event)

    def recommend_stream(self, user_id: str | int, k: int = 10, request: str | None = None,
                         exclude: Sequence[str] = (), like: Sequence[str] = (),
                         intent: Intent | None = None,
                         refine: Callable[[], Intent] | None = None) -> Iterator[StreamEvent]:
        """Like :meth:`recommend`, as events: ``list`` (the ranked list at once, evidence
        explanations), ``reason`` per shown item as the model writes it, ``final``. Arguments are
        checked (and an unknown user raised) before the first event is asked for.

        Example:
            >>> for event in Recommender().recommend_stream("1", k=5):   # doctest: +SKIP
            ...     print(event.kind, event.item.explanation if event.item else "")
        """
        user = inputs.user_id(user_id)
        k, request = inputs.top_k(k), inputs.request_text(request)
        exclude, like = inputs.item_entries(exclude, "exclude"), inputs.item_entries(like, "like")
        history = self.history(user)
        return self._stream(user, history, k, request, exclude, like, intent, refine, owner=user_tag(user))

    def recommend_for_history(self, items: Sequence[str | int], k: int = 10, request: str | None = None,
                              exclude: Sequence[str] = (), ratings: dict[str, float] | None = None,
                              intent: Intent | None = None,
                              on_event: Callable[[StreamEvent], None] | None = None,
                              refine: Callable[[], Intent] | None = None) -> RecommendationList:
        """Recommendations for someone not in the data, from items (ids or titles) they liked, oldest first.

        ``items`` is a list; one string is taken as one item (id or title). ``on_event`` as in :meth:`recommend`.
        """
        return _last(self.recommend_for_history_stream(items, k, request, exclude, ratings, intent, refine), on_event)

    def recommend_for_history_stream(self, items: Sequence[str | int], k: int = 10, request: str | None = None,
                                     exclude: Sequence[str] = (), ratings: dict[str, float] | None = None,
                                     intent: Intent | None = None,
                                     refine: Callable[[], Intent] | None = None) -> Iterator[StreamEvent]:
        """:meth:`recommend_for_history` as events (see :meth:`recommend_stream`)."""
        k, request = inputs.top_k(k), inputs.request_text(request)
        exclude, entries = inputs.item_entries(exclude, "exclude"), inputs.item_entries(items, "items")
        history = History(items=self.resolve_items(entries) if entries else [], ratings=ratings or {})
        return self._stream(None, history, k, request, exclude, (), intent, refine)

    def _stream(self, user_id: str | None, history: History, k: int, request, exclude, like,
                intent: Intent | None = None, refine: Callable[[], Intent] | None = None,
                owner: str | None = None) -> Iterator[StreamEvent]:
        # one deadline shared by every model call of this request (intent, reasons, profile, rerank); building
        # the index and fitting the models on first use are not model calls and happen before the clock starts
        engine = self.engine
        limit = Deadline(self.settings.deadline_s) if self.client else None

        def scope() -> ExitStack:
            stack = ExitStack()
            stack.enter_context(within(limit))
            if owner is not None:  # replies whose prompt holds this history can be forgotten
                stack.enter_context(cache_owner(owner))
            return stack

        yield from engine.recommend_stream(history, inputs.top_k(k), request, exclude, like, user_id=user_id,
                                           intent=intent, scope=scope, refine=refine)

    # ----- privacy -----
    def forget(self, user_id: str | int) -> ForgetReport:
        """Delete everything derived from this user's data: cached model replies whose prompt held
        their history, evaluation records naming them, fitted collaborative models and in-memory
        profiles (see :mod:`promptrec.privacy`). The dataset itself is not changed, and the user
        need not be in it."""
        user = str(user_id)
        dropped = [key for key in self._profiles if key[0] == user]
        for key in dropped:
            del self._profiles[key]
        report = forget_user(self.settings, user)
        client = self.__dict__.get("client")
        cache = client.cache if client is not None else None
        if cache is not None and cache.path != self.settings.llm_cache_path:
            report.cache_replies += cache.forget(user_tag(user))  # a cache of its own (in memory, elsewhere)
        for name in ("collab", "new_items", "retriever", "ranker"):
            self.__dict__.pop(name, None)  # refitted from the data on next use
        if "profile_store" in self.__dict__:
            self.profile_store.reload()  # forget_user rewrote the file without this user's records
        report.profiles = len(dropped)
        return report

    # ----- indexing -----
    def ensure_index(self) -> None:
        """Embed the catalog from its raw text when the vector store is missing items (fast; no model).

        Under the dataset's index lock: when another process is embedding the same catalog, this
        one waits for it (saying so in the log) and then reuses its vectors. The store is not
        opened before the first complete index exists (an embedded Chroma opened too early does
        not see another process's vectors).
        """
        total = len(self.dataset.catalog)
        if self.state.index_done.exists() and self.store.count() >= total:
            return
        lock = self.state.index_lock()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("another promptrec process is embedding %s; waiting for it (lock %s)",
                        self.dataset.name, lock.lock_file)
            acquire(lock, INDEX_WAIT_S, f"embedding {self.dataset.name}")
            if self._chroma_client is None:
                self.__dict__.pop("store", None)  # reopen: the other process has written since
        try:
            if self.store.count() < total:
                log.info("vector store has %d of %d items; embedding the rest", self.store.count(), total)
                self._index(features=0)
            else:
                self.state.index_done.touch()
        finally:
            lock.release()

    def index(self, features: int = 0, rebuild: bool = False,
              progress: Callable[[str, int], Callable[[int], None]] | None = None) -> dict:
        """Build the vector store from item text, then extract features for the ``features`` most
        popular items without them and re-embed those items. Resumable: finished work is kept.

        Args:
            features: How many items (most popular first) should have model features; 0 = none,
                -1 = all.
            rebuild: Drop the vector store first.
            progress: ``progress(label, total)`` returns an ``advance(n)`` callback.

        Raises:
            StateBusy: when another process is indexing the same dataset (it does not wait).
        """
        lock = acquire(self.state.index_lock(), 0, f"indexing {self.dataset.name}")
        try:
            return self._index(features, rebuild, progress)
        finally:
            lock.release()

    def batch_client(self) -> LLMClient:
        """The client for batch jobs (features, profiles): the configured local model on parallel slots
        (xllamacpp, extra ``batch``) when it is installed, else a client of the configured backend (an
        OpenAI-compatible one sends ``max_concurrency`` requests at once; a local model without xllamacpp
        answers one at a time). A backend or client given to the constructor is used as it is."""
        import importlib.util

        if self._llm in (None, False):
            if self.settings.llm.backend == "llamacpp" and importlib.util.find_spec("xllamacpp"):
                from .llm.parallel import make_batch_backend

                return make_client(self.settings, make_batch_backend(self.settings))
            return self.client if self._llm is None else make_client(self.settings)
        return self.client

    def _index(self, features: int = 0, rebuild: bool = False,
               progress: Callable[[str, int], Callable[[int], None]] | None = None) -> dict:
        from .knowledge.batch import run_feature_batch

        catalog = self.dataset.catalog
        if rebuild:
            self.state.index_done.unlink(missing_ok=True)
            self.store.client.delete_collection(self.store.name)
            self.__dict__.pop("store", None)
            self.__dict__.pop("engine", None)
        report: dict = {"items": len(catalog)}
        if features:
            counts = self.dataset.interactions.item_counts
            ranked = sorted(catalog, key=lambda it: (-int(counts.get(it.item_id, 0)), it.item_id))
            chosen = ranked if features < 0 else ranked[:features]
            if self._llm is False:
                raise UserInputError("feature extraction needs a language model; build the Recommender with "
                                     "llm=None (the configured model) or a backend, not llm=False")
            advance = progress("item features", len(chosen)) if progress else None
            job = run_feature_batch(self.batch_client(), chosen, self.features, progress=advance)
            # "failed" counts every item left without features: invalid replies and degenerate ones ("rejected")
            report["features"] = {**job.model_dump(), "extracted": job.done, "failed": job.processed - job.done,
                                  "per_second": round(job.per_second, 4)}
        records = index_records(catalog, self.features)
        advance = progress("embedding", len(records)) if progress else None
        report["embedded"] = self.store.upsert(records, progress=advance)
        report["stored"] = self.store.count()
        if report["stored"] >= len(catalog):
            self.state.index_done.touch()
        report["with_features"] = len(self.features)
        return report
