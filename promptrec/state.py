"""Where derived state lives: under ``PROMPTREC_STATE_DIR``, keyed by the dataset's identity.

A dataset's identity is a slug of its name plus a hash of its loaded content (catalog and
interactions), so two folders with the same name but different data never share a vector
store, and state is never written into (or read from) a data folder.

    <state_dir>/llm-cache.sqlite               model replies (shared by every dataset)
    <state_dir>/derived/<identity>/chroma      item vectors (embedded Chroma)
    <state_dir>/derived/<identity>/features.jsonl
    <state_dir>/derived/<identity>/features/<model>.jsonl   item features made by one model (batch jobs)
    <state_dir>/derived/<identity>/collab-<fingerprint>.npz
    <state_dir>/derived/<identity>/transfer-<fingerprint>.npz/.json   the new-item map, removed by forget
    <state_dir>/derived/<identity>/vectors/    text vectors by text hash (new-item map, learned fusion)
    <state_dir>/derived/<identity>/profiles.jsonl   user profiles (profile job and product), removed by forget
    <state_dir>/derived/<identity>/index.lock  held while the catalog is being embedded
    <state_dir>/derived/<identity>/index-complete  written once every item has a vector
"""

from __future__ import annotations

import hashlib
import json
import re
import weakref
from pathlib import Path

from filelock import FileLock, Timeout

from .data import Dataset
from .errors import ConfigError, StoreError

DERIVED = "derived"
_IDENTITY = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}-[0-9a-f]{16}$")
_identities: weakref.WeakKeyDictionary[Dataset, str] = weakref.WeakKeyDictionary()


class StateBusy(StoreError):
    """Another promptrec process holds the lock on this state (indexing or writing features)."""


def slug(name: str) -> str:
    """Lower-case letters, digits and single dashes only (safe as one path component)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "dataset"


def model_slug(model_id: str) -> str:
    """A file-name-safe name for a model id (``SmolLM2-135M-Instruct.Q4_1.gguf@97bd...`` -> ``smollm2-135m-instruct-q4-1-gguf-97bd...``)."""
    return re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[:120] or "model"


def content_digest(dataset: Dataset) -> str:
    """SHA-256 of the loaded content (catalog items and interactions, as the product sees them):
    one name for a dataset's content, used for its state folder and in evaluation results."""
    digest = hashlib.sha256()
    for item in dataset.catalog:
        digest.update(json.dumps([item.item_id, item.title, sorted(item.fields.items())]).encode() + b"\n")
    frame = dataset.interactions.frame
    digest.update(frame.to_csv(index=False, float_format="%.6g").encode())
    if getattr(dataset, "users", None):  # only when there is a users file: other hashes stay as they were
        digest.update(json.dumps(sorted((u, sorted(a.items())) for u, a in dataset.users.items())).encode())
    return digest.hexdigest()


def content_hash(dataset: Dataset) -> str:
    """The first 16 hex digits of :func:`content_digest`."""
    return content_digest(dataset)[:16]


def dataset_identity(dataset: Dataset) -> str:
    """``<slug of the name>-<content hash>``; computed once per loaded dataset object."""
    identity = _identities.get(dataset)
    if identity is None:
        identity = f"{slug(dataset.name)}-{content_hash(dataset)}"
        _identities[dataset] = identity
    return identity


def source_folders(dataset: Dataset) -> list[Path]:
    """The folders the dataset's files were read from (as its load reports name them)."""
    folders = []
    for report in dataset.reports:
        path = Path(report.source)
        if path.is_file():
            folders.append(path.resolve().parent)
    return sorted(set(folders))


class DatasetState:
    """The paths of one dataset's derived state, and the locks that guard them.

    Args:
        state_dir: ``Settings.state_dir``.
        identity: :func:`dataset_identity` of the dataset.
        data_folders: Folders that must not contain the state (the dataset's own folders).

    Raises:
        ConfigError: when the identity is malformed or the state would land inside a data folder.
    """

    def __init__(self, state_dir: Path, identity: str, data_folders: list[Path] = ()) -> None:
        if not _IDENTITY.match(identity):
            raise ConfigError(f"malformed dataset identity {identity!r}")
        self.identity = identity
        self.root = Path(state_dir).expanduser().resolve() / DERIVED / identity
        for folder in data_folders:
            folder = Path(folder).resolve()
            if self.root == folder or folder in self.root.parents:
                raise ConfigError(
                    f"the state directory {self.root.parent.parent} lies inside the data folder {folder}; "
                    "derived state is never written into a data folder. Set PROMPTREC_STATE_DIR (or --state-dir) "
                    "to a folder outside it."
                )

    @classmethod
    def for_dataset(cls, state_dir: Path, dataset: Dataset) -> DatasetState:
        return cls(state_dir, dataset_identity(dataset), source_folders(dataset))

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def features(self) -> Path:
        return self.root / "features.jsonl"

    def features_for(self, model_id: str, style: str = "open", bare: bool = False) -> Path:
        """Item features made by one model (``model_id`` as the LLM client names it) with one prompt style
        (``open`` or ``closed``, see ``promptrec.knowledge.items``), one file each, so features of a small
        and of a quality model, or of the two styles, can be compared and none overwrites another.
        ``bare``: features made from title and genres only (no user tags), as a new item would have them
        (the evaluation's Protocol D)."""
        suffix = ("" if style == "open" else f".{style}") + (".bare" if bare else "") + ".jsonl"
        return self.root / "features" / f"{model_slug(model_id)}{suffix}"

    @property
    def profiles(self) -> Path:
        """User profiles by (user, history, model, prompt): written by the profile job and by the product."""
        return self.root / "profiles.jsonl"

    @property
    def collab(self) -> Path:
        return self.root

    @property
    def index_done(self) -> Path:
        """Written once the whole catalog has been embedded (first runs wait for it under the lock)."""
        return self.root / "index-complete"

    @property
    def index_lock_path(self) -> Path:
        return self.root / "index.lock"

    def index_lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.index_lock_path))


def acquire(lock: FileLock, timeout: float, what: str) -> FileLock:
    """Acquire ``lock`` within ``timeout`` seconds (0: don't wait) or raise :class:`StateBusy`."""
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise StateBusy(
            f"another promptrec process is {what} (lock {lock.lock_file}); wait for it to finish and run again"
        ) from None
    return lock


__all__ = ["DERIVED", "DatasetState", "StateBusy", "acquire", "content_hash", "dataset_identity", "slug",
           "source_folders"]
