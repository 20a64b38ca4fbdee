"""Serving settings: where to listen and how much work to take at once."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    """How ``promptrec serve`` listens and how much it takes on (env ``PROMPTREC_SERVE_*``; CLI options override).

    A request that needs the recommender takes one of ``concurrency`` slots; up to ``queue`` more
    wait for a slot (at most ``queue_timeout_s``). Anything beyond is answered 503 at once.
    """

    model_config = SettingsConfigDict(env_prefix="PROMPTREC_SERVE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface to listen on; 0.0.0.0 exposes the server to the network.")
    port: int = Field(8000, ge=0, le=65535)
    concurrency: int = Field(2, ge=1, le=64, description="Requests computed at once (threads running the pipeline).")
    queue: int = Field(8, ge=0, le=1024, description="Requests allowed to wait for a slot; more get 503 at once.")
    queue_timeout_s: float = Field(30.0, gt=0, description="Longest wait for a slot before answering 503.")
    max_sessions: int = Field(200, ge=1, le=100_000, description="Chat sessions kept at once (least recently used go first).")
    session_ttl_s: float = Field(1800.0, gt=0, description="A chat session idle this long is forgotten.")
    max_search_results: int = Field(50, ge=1, le=500, description="Upper bound on GET /items results.")
