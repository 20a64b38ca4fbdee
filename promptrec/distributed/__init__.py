"""Batch work past one machine: item features, user profiles and batch recommendation lists as Ray jobs (``pip install 'promptrec[ray]'``).

Work is split into shards of items or users; each Ray worker builds its own model backend (a local
llama.cpp model, or a client of an OpenAI-compatible server) once and answers whole shards; the driver
writes each finished shard's records to the same resumable stores a local run uses, keyed by item or
user id, so a retried shard (a worker died, a task raised) never writes a record twice.

Example:
    >>> from promptrec import Recommender                                        # doctest: +SKIP
    >>> from promptrec.distributed import popular_items, run_feature_job         # doctest: +SKIP
    >>> rec = Recommender(llm=False)                                             # doctest: +SKIP
    >>> run_feature_job(rec.settings, popular_items(rec.dataset, 500), rec.features,
    ...                 ray_address="auto", workers=8)                          # doctest: +SKIP
"""

from .batch import ListRecord, ListStore, run_recommend_job
from .jobs import popular_items, run_feature_job, run_profile_job
from .profiles import ProfileRecord, ProfileStore
from .runner import JobReport, run_shards, shards

__all__ = [
    "JobReport",
    "ListRecord",
    "ListStore",
    "ProfileRecord",
    "ProfileStore",
    "popular_items",
    "run_feature_job",
    "run_profile_job",
    "run_recommend_job",
    "run_shards",
    "shards",
]
