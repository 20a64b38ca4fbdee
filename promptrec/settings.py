"""Global settings: one pydantic-settings class, env prefix ``PROMPTREC_``, ``__`` nesting.

Example: ``PROMPTREC_LLM__MODEL=small`` or ``PROMPTREC_FUSION__WEIGHTS='{"ease": 1.0}'``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from .settings_errors import config_error, settings_source_error

# Fusion sources: the embedding similarity, the tuned classic blend, and every single collaborative
# scorer (promptrec.collab.COMPONENTS). Listed here so that checking a setting needs no heavy import;
# tests/test_settings.py checks that this matches promptrec.retrieval.build_scorers.
EMBEDDING_SOURCE = "embedding"
COLD_SOURCE = "cold"  # items the collaborative scorers cannot score, scored from their text (NewItemSettings)
SCORER_SOURCES = ("ease", "itemknn", "linear_transition", "popularity", "timepop", "transition")
FUSION_SOURCES = (EMBEDDING_SOURCE, "classic", *SCORER_SOURCES, COLD_SOURCE)


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promptrec"


class Section(BaseModel):
    """A group of settings: unknown names are refused, numbers must be finite, and a bad value
    raises :class:`~promptrec.errors.ConfigError` even when the section is built on its own."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise config_error(err, type(self)) from None


def _http_url(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    parsed = urlparse(value)
    try:
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port; give e.g. http://127.0.0.1:8000") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000; got {value!r}")
    return value


class LLMSettings(Section):
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
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    n_ctx: int = Field(4096, ge=1)
    n_threads: int | None = Field(
        None, ge=1, validation_alias=AliasChoices("threads", "n_threads"),
        description="CPU threads of the local model (generation and prompt evaluation); None: every usable core. "
        "PROMPTREC_LLM__THREADS sets it.",
    )
    timeout_s: float = Field(120.0, gt=0.0)
    max_concurrency: int = Field(
        4, ge=1, le=64, description="openai: requests sent at once by the batch jobs (features, profiles)."
    )
    n_parallel: int = Field(
        8, ge=1, le=64, description="llamacpp: sequences the batch jobs decode together (xllamacpp's parallel slots)."
    )
    prefix_cache_mb: int = Field(
        256, ge=0, description="llamacpp: memory for model states kept after each call, so a later prompt "
        "sharing a prefix (a chat turn's reasons after its request reading) skips evaluating it; 0: off."
    )

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name a model: 'small', 'medium', 'quality', a .gguf path, or an API model id")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _http_url(value, "the base URL")


class EmbeddingSettings(Section):
    """The text embedder used for the vector store."""

    model: Literal["minilm-int8"] = "minilm-int8"
    batch_size: int = Field(64, ge=1)


class StoreSettings(Section):
    """Where item vectors live: an embedded persistent Chroma, or a Chroma server."""

    url: str | None = Field(None, description="Chroma server URL, e.g. http://127.0.0.1:8000; None = embedded.")
    collection: str = Field("promptrec-items", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$",
                            description="Collection name: 3-512 letters, digits, '.', '_' or '-'.")
    exact_max_items: int = Field(200_000, ge=0, description="Up to this many items, nearest-item queries are exact "
                                 "(cosine over every stored vector, in memory; the same answer in every process); "
                                 "above it Chroma's approximate HNSW index answers.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value, "the Chroma server URL")


class FusionSettings(Section):
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
    candidate_depth: int = Field(100, ge=1, description="Candidates taken from each source before fusion (chosen on validation).")
    min_item_support: int = Field(5, ge=0, description="Items with fewer interactions get no collaborative score.")
    recency_half_life: float = Field(20.0, gt=0.0, description="History positions until an item's weight halves.")
    learned_depth: int = Field(
        200, ge=1, description="Candidates taken from each source for the learned fusion: fit_fusion trains on pools "
        "of this depth and the model file records it, so the product ranks pools of the depth it learned from "
        "(chosen on Protocol A validation among the weighted sum's depth, 100 and 200: eval/learned_fusion.py).")
    learned: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Learned fusion (LightGBM/linear ranker over per-candidate signals, fitted by "
        "Recommender.fit_fusion / `promptrec fit-fusion`): 'auto' ranks the pool with it when this dataset has "
        "a fitted model that won on validation, else the weighted sum; 'on' requires one; 'off' never uses it.",
    )

    @field_validator("weights")
    @classmethod
    def _known_finite_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(name for name in weights if name not in FUSION_SOURCES)
        if unknown:
            raise ValueError(f"unknown fusion source {', '.join(map(repr, unknown))}; known: {', '.join(FUSION_SOURCES)}")
        bad = {name: w for name, w in weights.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"weights must be finite numbers >= 0; got {bad}")
        if not any(weights.values()):
            raise ValueError("give at least one source a weight above 0, e.g. {\"embedding\": 0.02, \"classic\": 1.0}")
        return weights

    @field_validator("params")
    @classmethod
    def _known_scorers(cls, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(name for name in params if name not in SCORER_SOURCES)
        if unknown:
            raise ValueError(f"no hyperparameters for {', '.join(map(repr, unknown))}; "
                             f"params are for the single scorers: {', '.join(SCORER_SOURCES)}")
        return params

    steering_weights: dict[str, float] = Field(
        default_factory=lambda: {"request": 1.0, "anchor": 1.0},
        description="Weights of the request's own sources, used only when a request is typed: 'request' "
        "(similarity to the request's text) and 'anchor' (what people who chose the named items chose).",
    )

    @field_validator("steering_weights")
    @classmethod
    def _steering_sources(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(name for name in weights if name not in ("request", "anchor"))
        if unknown:
            raise ValueError(f"unknown steering source {', '.join(map(repr, unknown))}; known: 'request', 'anchor'")
        bad = {name: w for name, w in weights.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"weights must be finite numbers >= 0; got {bad}")
        return weights


class NewItemSettings(Section):
    """The ``cold`` fusion source: items without (enough) interactions scored from their text by a ridge
    map into the collaborative space (promptrec.knowledge.transfer). Defaults chosen on Protocol D validation."""

    text: Literal["raw", "joined", "stored", "model"] = Field(
        "raw", description="The text vectors mapped: 'raw': the catalog text without user tags (as a new item is "
        "known); 'joined': that vector beside the vector of the model's features; 'stored': the vector store's own "
        "(tags and features in one text); 'model': the raw vector beside the local model's own vector of the same "
        "text (mean of its last hidden states; one forward pass per catalog item, cached; llamacpp backend only). "
        "On Protocol D validation (transfer map N@20 among new items): 0.310 raw, 0.297 joined, 0.287 feature text, "
        "0.370 model with the quality model (0.444 vs 0.366 raw on test; eval/protocol_d.py --model-vectors quality). 'raw' stays the "
        "default because 'model' reads every catalog item through the model once (about 0.23 s per item for the "
        "quality model on 2 cores) and the cold source itself is off by default.")
    space: Literal["svd", "ease"] = Field("ease", description="'ease': EASE item-item columns; 'svd': truncated-SVD factors.")
    factors: int = Field(64, ge=1, description="SVD factors (space 'svd').")
    lambda_: float = Field(3.0, gt=0, description="Ridge penalty of the text -> collaborative-space map.")
    ease_lambda: float = Field(100.0, gt=0, description="EASE penalty of the space (space 'ease').")
    neutral_missing: bool = Field(
        False, description="A new item's missing collaborative scores count as the pool's mean (neutral) "
        "instead of its minimum. Chosen on Protocol D validation.")
    slot: int | None = Field(
        0, ge=0, description="When none of a list's first `slot` items is new, the best new item (by its "
        "mapped text score) is shown at position `slot` (e.g. 10: the last of ten); 0 or null: no reserved "
        "place. 0 chosen on Protocol D validation (eval/protocol_d_product.py): a reserved place cost "
        "N@10 and placed no new-item target in the top 10.")


class FeatureSettings(Section):
    """How the model describes items (``promptrec index --features``, ``eval/knowledge_job.py``)."""

    style: Literal["closed", "open"] = Field(
        "closed", description="'closed': themes, mood and audience picked from a fixed vocabulary (short "
        "replies, never degenerate text; chosen because models under 1B wrote 13-95% degenerate open "
        "features); 'open': free phrases and a sentence.")


class RequestSettings(Section):
    """How typed requests are read."""

    model_reads: Literal["leftover", "always", "never"] = Field(
        "leftover", description="When the model reads a typed request (after the list from the rules' reading is "
        "shown): 'leftover' only when the rules leave words of it unread (its reading is kept only where the "
        "request's words support it, so it could add nothing else); 'always'; 'never' (rules only).")


class ProfileSettings(Section):
    """User knowledge: the interest profile."""

    enabled: bool = True
    token_budget: int = Field(500, ge=1, description="Tokens of history text given to the model, most recent kept.")


class RerankSettings(Section):
    """LLM rerank of the top candidates (off for the product's order by default: see ``reorder``)."""

    enabled: bool = True
    reorder: bool = Field(
        False,
        description="Let the model's rerank reorder the shown list (blended by llm_weight). Off by default: "
        "the rerank is at chance for every local model on Protocols A and B, so the list keeps the fused "
        "order and the model explains it (ExplainSettings). The evaluation's rerank rows run either way.",
    )
    depth: int = Field(15, ge=1, description="How many fused candidates the model sees.")
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
    history_items: int = Field(12, ge=1, description="Recent history items shown to the model for citing.")
    permutations: int = Field(1, ge=1, description="Candidate orders asked and averaged (2 adds the reverse order).")


class ExplainSettings(Section):
    """One model-written reason per shown item, grounded in a history item chosen from the evidence."""

    enabled: bool = True
    history_items: int = Field(50, ge=1, description="Most recent history items a reason may cite "
                               "(plus the retriever's evidence items).")
    max_chars: int = Field(140, ge=40, le=300, description="Longest reason the model may write.")
    stop_after_refused: int = Field(
        10, ge=0, description="Stop asking the model for reasons (in this process) once this many in a row were "
        "refused by the quality gate; the evidence explanations stand and say why. SmolLM2-135M's reasons are "
        "refused 92-100% of the time, and asking for them costs 8-9 s per answer. 0: always ask.")


class Settings(BaseSettings):
    """Everything configurable, read from the environment (``PROMPTREC_*``) or passed in."""

    model_config = SettingsConfigDict(env_prefix="PROMPTREC_", env_nested_delimiter="__", extra="ignore",
                                      allow_inf_nan=False)

    data_dir: Path = Field(default_factory=lambda: _cache_home() / "datasets")
    state_dir: Path = Field(
        default_factory=_cache_home,
        description="LLM cache, and per dataset (under derived/<name>-<content hash>/) the vector store, item "
        "features and fitted collaborative model. Never inside a data folder.",
    )
    dataset: str = "ml-latest-small"
    download: bool = Field(True, description="Download the dataset when it is missing.")
    seed: int = 0
    deadline_s: float = Field(
        120.0,
        gt=0,
        description="Seconds one recommend() may spend on model calls (request reading, profile and rerank "
        "together); after it the answer falls back to the fused order with evidence explanations. 120 s covers "
        "the packaged quality model on a 2-core CPU (a cold profile + rerank took 65-104 s there) and gives up "
        "on a hung server long before the 120 s per-call HTTP timeout times its retries (about 12 minutes) would.",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    new_items: NewItemSettings = Field(default_factory=NewItemSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    request: RequestSettings = Field(default_factory=RequestSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    explain: ExplainSettings = Field(default_factory=ExplainSettings)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise config_error(err, type(self)) from None
        except SettingsError as err:
            raise settings_source_error(err, type(self)) from None

    @field_validator("data_dir", "state_dir")
    @classmethod
    def _a_folder(cls, path: Path) -> Path:
        path = path.expanduser()
        existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
        if existing.exists() and not existing.is_dir():
            where = "is" if existing == path else f"is inside {existing}, which is"
            raise ValueError(f"{path} {where} a file, not a folder; point it at a folder (it is created when missing)")
        return path

    @field_validator("dataset")
    @classmethod
    def _dataset_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name a dataset: 'ml-latest-small' or a folder of items + interactions files")
        return value

    # State that belongs to one dataset is keyed by the dataset's identity (name + content hash),
    # never by the dataset setting, which may be a path: see promptrec.state.DatasetState.

    @property
    def llm_cache_path(self) -> Path:
        return self.state_dir / "llm-cache.sqlite"
