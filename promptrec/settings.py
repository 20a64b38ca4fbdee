"""Global settings: one pydantic-settings class, env prefix ``PROMPTREC_``, ``__`` nesting.

Example: ``PROMPTREC_LLM__MODEL=small`` or ``PROMPTREC_FUSION__WEIGHTS='{"ease": 1.0}'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promptrec"


class LLMSettings(BaseModel):
    """Which language model answers, and how."""

    backend: Literal["llamacpp", "openai"] = "llamacpp"
    model: str = Field(
        "quality",
        description="llamacpp: 'quality', 'small', 'medium', a GGUF path or 'hf:REPO/FILE'; openai: the API model id.",
    )
    base_url: str | None = Field(None, description="OpenAI-compatible base URL; None means api.openai.com.")
    api_key: SecretStr | None = Field(None, description="API key; falls back to OPENAI_API_KEY.")
    send_key_to_custom_url: bool = Field(
        False, description="Send the API key to a base URL that is not api.openai.com."
    )
    temperature: float = 0.0
    n_ctx: int = 4096
    n_threads: int | None = None
    timeout_s: float = 120.0


class EmbeddingSettings(BaseModel):
    """The text embedder used for the vector store."""

    model: Literal["minilm-int8"] = "minilm-int8"
    batch_size: int = 64


class StoreSettings(BaseModel):
    """Where item vectors live: an embedded persistent Chroma, or a Chroma server."""

    url: str | None = Field(None, description="Chroma server URL, e.g. http://127.0.0.1:8000; None = embedded.")
    collection: str = "promptrec-items"


class FusionSettings(BaseModel):
    """How candidate sources are combined: R = g(U, C)."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {"embedding": 0.02, "classic": 1.0},
        description="Weight of each per-user normalised score; 0 switches a source off. "
        "Default chosen on validation by eval/run.py.",
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Hyperparameters per single collaborative scorer, by source name (e.g. ease: {lambda_: 300}).",
    )
    candidate_depth: int = Field(100, description="Candidates taken from each source before fusion (chosen on validation).")
    min_item_support: int = Field(5, description="Items with fewer interactions get no collaborative score.")
    recency_half_life: float = Field(20.0, description="History positions until an item's weight halves.")


class ProfileSettings(BaseModel):
    """User knowledge: the interest profile."""

    enabled: bool = True
    token_budget: int = Field(500, description="Tokens of history text given to the model, most recent kept.")


class RerankSettings(BaseModel):
    """LLM rerank and explanation of the top candidates."""

    enabled: bool = True
    depth: int = Field(15, description="How many fused candidates the model sees.")
    llm_weight: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="1 = the model's order alone, 0 = the fused order alone (the model then only explains). "
        "Default chosen on validation by eval/run.py for the quality model (20 users; a small effect).",
    )
    request_llm_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The model's share of the order when the user typed a request (chat, request=...): "
        "the fused order cannot read a request, so the model's reading of it counts.",
    )
    history_items: int = Field(12, description="Recent history items shown to the model for citing.")
    permutations: int = Field(1, ge=1, description="Candidate orders asked and averaged (2 adds the reverse order).")


class Settings(BaseSettings):
    """Everything configurable, read from the environment (``PROMPTREC_*``) or passed in."""

    model_config = SettingsConfigDict(env_prefix="PROMPTREC_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: _cache_home() / "datasets")
    state_dir: Path = Field(default_factory=_cache_home, description="Vector store, item features, LLM cache.")
    dataset: str = "ml-latest-small"
    download: bool = Field(True, description="Download the dataset when it is missing.")
    seed: int = 0
    deadline_s: float = Field(
        90.0,
        gt=0,
        description="Seconds one recommend() may spend on model calls (profile + rerank together); after it "
        "the answer falls back to the fused order with evidence explanations. 90 s covers the packaged quality "
        "model on a laptop CPU (profile + rerank take about 75 s at the median) and gives up on a hung server "
        "long before the 120 s per-call HTTP timeout times its retries would.",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)

    @property
    def dataset_state_dir(self) -> Path:
        """State that belongs to one dataset (vectors, features)."""
        return self.state_dir / self.dataset

    @property
    def llm_cache_path(self) -> Path:
        return self.state_dir / "llm-cache.sqlite"
