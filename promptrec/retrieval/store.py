"""Item vectors in Chroma: an embedded persistent store, or a Chroma server when a URL is set."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from filelock import FileLock

from ..errors import StoreError
from .embeddings import Embedder

log = logging.getLogger(__name__)


class StoreMismatch(StoreError):
    """The collection was built with another embedder than the one in use."""


class ChromaEmbeddingFunction:
    """Adapts an :class:`Embedder` to Chroma's embedding-function protocol (never Chroma's default)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002 - Chroma's argument name
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "promptrec"

    def get_config(self) -> dict:
        return {"embedder": self.embedder.name, "dimension": self.embedder.dimension}

    @staticmethod
    def build_from_config(config: dict) -> ChromaEmbeddingFunction:
        # Chroma calls this when it reopens a persistent collection (it warns without it); the
        # store then passes its own embedder, so this one is never used to embed.
        from .embeddings import make_embedder

        return ChromaEmbeddingFunction(make_embedder("minilm-int8"))

    def is_legacy(self) -> bool:
        return False

    def embed_query(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002
        return self(input)

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def make_client(path: Path | None = None, url: str | None = None):
    """A Chroma client: HTTP when ``url`` is given, else persistent at ``path``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if url:
        try:
            parsed = urlparse(url)
            return chromadb.HttpClient(
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as err:  # chromadb raises ValueError, httpx errors, ... for a server it cannot reach
            raise StoreError(
                f"cannot reach the Chroma server at {url} ({type(err).__name__}: {err}). Start it "
                "(e.g. chroma run --path DIR --port 8000) or fix the URL, or unset PROMPTREC_STORE__URL "
                "and drop --chroma-url to use the embedded store"
            ) from None
    if path is None:
        return chromadb.EphemeralClient(settings=chroma_settings)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # Chroma creates its tables when the first client opens an empty folder; two processes doing
    # that at once fail ("table collections already exists"), so creation is serialised.
    with FileLock(str(path.with_name(path.name + ".lock"))):
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


EXACT_MAX_ITEMS = 200_000


class ItemVectorStore:
    """One Chroma collection of item vectors, tagged with the embedder that made them.

    Args:
        client: A Chroma client (see :func:`make_client`).
        embedder: The embedder; its name and dimension are stored in the collection metadata
            and checked on every open.
        collection: The collection name (at least 3 characters).
        lock_path: A lock file held while the collection is looked up or created, so that
            concurrent first runs create it once (None: no lock; a creation race is still tolerated).
        exact_max_items: Up to this many items :meth:`query` is exact: cosine over every stored vector
            (held in memory, reloaded when the collection's size changes or this store writes), ties by item
            id. Chroma's HNSW index is approximate and is rebuilt with different results from process to
            process (chroma-core/chroma#2675: on the 3,650-item evaluation store two processes disagreed on
            398 of 10,000 top-200 places for 50 queries, and HNSW found 87% of the exact top 200), which
            would make the same request give different lists. Above it, Chroma's index answers.

    Raises:
        StoreMismatch: when the collection was built with another embedder.
    """

    def __init__(self, client, embedder: Embedder, collection: str = "promptrec-items",
                 lock_path: Path | None = None, exact_max_items: int = EXACT_MAX_ITEMS) -> None:
        self.embedder = embedder
        self.client = client
        self.name = collection
        self.exact_max_items = exact_max_items
        self._exact: tuple[int, list[str], np.ndarray] | None = None  # (count, ids, unit rows) for exact queries
        if lock_path is None:
            self.collection = self._open()
        else:
            Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(lock_path)):
                self.collection = self._open()
        self._check(self.collection.metadata or {})

    def _open(self):
        function = ChromaEmbeddingFunction(self.embedder)
        existing = {c if isinstance(c, str) else c.name for c in self.client.list_collections()}
        if self.name in existing:
            return self.client.get_collection(self.name, embedding_function=function)
        metadata = {"embedder": self.embedder.name, "dimension": self.embedder.dimension, "hnsw:space": "cosine"}
        try:
            return self.client.create_collection(self.name, embedding_function=function, metadata=metadata)
        except Exception as err:  # noqa: BLE001 - another client created it in between (a server has no lock)
            try:
                return self.client.get_collection(self.name, embedding_function=function)
            except Exception:  # noqa: BLE001
                raise StoreError(f"cannot create the Chroma collection {self.name!r}: {err}") from err

    def _check(self, metadata: dict) -> None:
        name, dim = metadata.get("embedder"), metadata.get("dimension")
        if name != self.embedder.name or dim != self.embedder.dimension:
            raise StoreMismatch(
                f"the Chroma collection {self.name!r} holds vectors from embedder {name!r} (dimension {dim}), "
                f"but this run embeds with {self.embedder.name!r} (dimension {self.embedder.dimension}). "
                "Rebuild it with `promptrec index --rebuild`, or set PROMPTREC_STORE__COLLECTION to another name."
            )

    def count(self) -> int:
        return self.collection.count()

    def stored_hashes(self) -> dict[str, str]:
        """item id -> hash of the text its vector was made from."""
        got = self.collection.get(include=["metadatas"])
        return {i: (m or {}).get("text_hash", "") for i, m in zip(got["ids"], got["metadatas"])}

    def upsert(
        self,
        records: Iterable[tuple[str, str, dict]],
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Embed and store (item id, text, metadata) records whose text changed; returns how many were written."""
        current = self.stored_hashes()
        todo = [(i, t, m) for i, t, m in records if current.get(i) != text_hash(t)]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            vectors = self.embedder.embed([t for _, t, _ in batch])
            self.collection.upsert(
                ids=[i for i, _, _ in batch],
                embeddings=vectors,
                documents=[t for _, t, _ in batch],
                metadatas=[{**m, "text_hash": text_hash(t)} for _, t, m in batch],
            )
            self._exact = None
            if progress:
                progress(len(batch))
        return len(todo)

    def vectors(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not item_ids:
            return {}
        got = self.collection.get(ids=list(item_ids), include=["embeddings"])
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}

    def query(self, vector: np.ndarray, n: int, exclude: set[str] = frozenset()) -> list[tuple[str, float]]:
        """The ``n`` nearest items by cosine similarity, leaving out ``exclude`` (exact up to
        ``exact_max_items`` items, ties by item id; approximate, by Chroma's index, above)."""
        total = self.count()
        if total == 0:
            return []
        if total <= self.exact_max_items:
            return self._exact_query(vector, n, exclude, total)
        want = min(total, n + len(exclude))
        got = self.collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=want,
                                    include=["distances"])
        pairs = [(i, 1.0 - float(d)) for i, d in zip(got["ids"][0], got["distances"][0]) if i not in exclude]
        return pairs[:n]

    def _exact_query(self, vector: np.ndarray, n: int, exclude: set[str], total: int) -> list[tuple[str, float]]:
        if self._exact is None or self._exact[0] != total:
            got = self.collection.get(include=["embeddings"])
            order = np.argsort(np.array(got["ids"], dtype=object), kind="stable")  # rows by item id: ties by id
            ids = [got["ids"][i] for i in order]
            rows = np.asarray(got["embeddings"], dtype=np.float32)[order] if len(order) else np.zeros((0, 0), np.float32)
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            self._exact = (total, ids, rows / np.where(norms > 0, norms, 1.0))
        _, ids, rows = self._exact
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if not len(ids) or norm == 0:
            return []
        sims = rows @ (query / norm)
        k = min(len(ids), n + len(exclude))
        # every item at least as close as the k-th (ties included), then sorted: the full sort's first k
        candidates = np.flatnonzero(sims >= np.partition(sims, len(ids) - k)[len(ids) - k]) if k else np.zeros(0, int)
        out = []
        for j in candidates[np.argsort(-sims[candidates], kind="stable")]:
            if ids[j] not in exclude:
                out.append((ids[j], float(sims[j])))
                if len(out) >= n:
                    break
        return out

