"""Settings: one TOML file plus ``TASTEBUD_*`` environment overrides; backends chosen by URL.

The file is ``$TASTEBUD_CONFIG`` if set, else ``./tastebud.toml`` if present. Environment
variables win over the file; nested keys use ``__`` (``TASTEBUD_EVENTS__MAX_CONTEXT_BYTES=8192``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tastebud.ranking.config import RankingSettings, ServingSettings

CONFIG_ENV = "TASTEBUD_CONFIG"
CONFIG_FILENAME = "tastebud.toml"

ValueKind = Literal["none", "rating", "seconds", "price", "count"]


class EventTypeSpec(BaseModel):
    """How one event type counts as training signal.

    ``weight`` is the preference strength of one event (negative for negative feedback);
    ``value`` says what an event's ``value`` field means, and ``value_required`` whether an
    event of this type is invalid without one (a rating without a score says nothing).
    """

    weight: float
    value: ValueKind = "none"
    value_required: bool = False

    @property
    def negative(self) -> bool:
        return self.weight < 0


def default_event_types() -> dict[str, EventTypeSpec]:
    return {
        "play": EventTypeSpec(weight=1.0, value="seconds"),
        "like": EventTypeSpec(weight=4.0),
        "dislike": EventTypeSpec(weight=-4.0),
        "skip": EventTypeSpec(weight=-0.5, value="seconds"),
        "view": EventTypeSpec(weight=0.5, value="seconds"),
        "click": EventTypeSpec(weight=1.0),
        "add_to_cart": EventTypeSpec(weight=3.0, value="price"),
        "purchase": EventTypeSpec(weight=5.0, value="price"),
        "rating": EventTypeSpec(weight=1.0, value="rating", value_required=True),
    }


class EventRules(BaseModel):
    """What makes an event acceptable, shared by the API, the loaders and bulk ingest."""

    types: dict[str, EventTypeSpec] = Field(
        default_factory=default_event_types,
        description="Event types on top of the defaults; `name = false` removes a default.",
    )
    max_id_length: int = Field(default=128, ge=8, le=1024)
    # Letters, digits and a few separators: safe in URLs, logs, Redis keys and file names.
    id_pattern: str = r"^[A-Za-z0-9_.:@/+=#~|-]+$"
    max_context_bytes: int = Field(default=4096, ge=0)
    earliest_timestamp: datetime = datetime(1990, 1, 1, tzinfo=UTC)
    max_future_seconds: float = Field(default=86_400.0, ge=0)
    max_locale_length: int = 35
    require_timestamp: bool = Field(
        default=False,
        description="HTTP events without `timestamp` are rejected (`missing_field`) instead of "
        "dated when the server received them.",
    )

    @field_validator("types", mode="before")
    @classmethod
    def _merge_with_defaults(cls, value: Any) -> Any:
        """Configured types add to (or replace) the defaults; ``name = false`` removes one."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = dict(default_event_types())
        for name, spec in value.items():
            if spec is False:
                merged.pop(name, None)
            else:
                merged[name] = spec
        if not merged:
            raise ValueError("at least one event type must be configured")
        return merged

    @field_validator("earliest_timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class IngestSettings(BaseModel):
    batch_size: int = Field(default=100_000, ge=1)
    max_reported_rejections: int = Field(default=1_000, ge=0)


class GatewaySettings(BaseModel):
    """The HTTP event gateway (``tastebud serve``): limits, auth, enrichment, DLQ, alerting."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    max_batch_events: int = Field(default=1000, ge=1, description="Events per request.")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    session_gap_seconds: float = Field(default=1800.0, gt=0)
    auth: bool = Field(default=True, description="Require an API key on /v1 routes.")
    bootstrap_admin_key: bool = Field(
        default=True, description="Embedded store: create and print an admin key on first run."
    )
    key_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a worker trusts a looked-up key (revocation lag)."
    )
    rate_limit_per_second: float = Field(default=200.0, gt=0, description="Requests per key.")
    rate_limit_burst: float = Field(default=400.0, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    store_retries: int = Field(default=3, ge=0, description="Retries of a transient failure.")
    retry_base_seconds: float = Field(default=0.05, ge=0)
    retry_max_seconds: float = Field(default=1.0, ge=0)
    dlq_ttl_seconds: float = Field(default=7 * 86_400.0, gt=0)
    dlq_max_entries: int = Field(default=100_000, ge=1)
    alert_window_seconds: float = Field(default=300.0, gt=0)
    alert_dlq_share: float = Field(default=0.05, gt=0, le=1)
    alert_min_events: int = Field(default=100, ge=1)
    alert_webhook_url: str | None = None


class JobsSettings(BaseModel):
    """The job runner: retries, timeouts, alerts and the scheduler's polling."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_cap_seconds: float = Field(default=60.0, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0, description="Overrides every job's.")
    alert_webhook_url: str | None = None
    scheduler_poll_seconds: float = Field(default=5.0, gt=0)
    max_catchup_runs: int = Field(default=1, ge=1, description="Missed intervals run per job.")
    keep_versions: int = Field(default=48, ge=1, description="Output versions kept per job.")
    popularity_window_days: float = Field(default=90.0, gt=0)
    popularity_half_life_days: float = Field(default=7.0, gt=0)
    popularity_top_n: int = Field(default=100, ge=1)
    affinity_window_days: float = Field(default=90.0, gt=0)
    affinity_half_life_days: float = Field(default=30.0, gt=0)
    affinity_top_categories: int = Field(default=10, ge=1)
    train_auto: bool = Field(default=True, description="The train job searches with AutoML.")
    train_budget_seconds: float = Field(default=600.0, gt=0, description="AutoML budget.")
    train_gate_tolerance: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Promote unless NDCG@10 is this much below production.",
    )
    train_gate_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="Each user's latest share held out by the gate."
    )


class TrendingSettings(BaseModel):
    """The trending detector's defaults (see ``tastebud.trending.detector``)."""

    recent_hours: int = Field(default=24, ge=1, le=24 * 14)
    baseline_days: int = Field(default=7, ge=1, le=90)
    z_threshold: float = Field(default=5.0, gt=0)
    min_lift: float = Field(default=2.5, ge=1)
    min_events: int = Field(default=10, ge=1)
    min_users: int = Field(default=10, ge=1)
    min_history_hours: float = Field(default=48.0, ge=0)
    smoothing_half_life_hours: float | None = Field(default=None, gt=0)
    seasonality: bool = True
    top_n: int = Field(default=50, ge=1)
    max_staleness_hours: float = Field(default=6.0, gt=0)


class FeatureSettings(BaseModel):
    """The feature store (see docs/features.md): where offline values live, extra manifests,
    the in-process cache in front of the online store, materialization and parity."""

    offline_url: str | None = Field(
        default=None,
        description="parquet:///dir or postgresql://...; default: PostgreSQL when the "
        "database is, else parquet under {home}/features.",
    )
    manifests: list[Path] = Field(default_factory=list, description="Extra manifest files/dirs.")
    builtin_manifests: bool = True
    cache_entries: int = Field(default=100_000, ge=0, description="In-process LRU size; 0: off.")
    cache_seconds: float = Field(default=30.0, gt=0)
    generation_check_seconds: float = Field(default=1.0, ge=0)
    overlap_seconds: float = Field(
        default=3600.0, ge=0, description="Materialization re-reads this much before its start."
    )
    backfill_step_hours: float = Field(default=24.0, gt=0)
    offline_retention_days: float = Field(
        default=90.0, gt=0, description="Offline snapshots older than this are pruned."
    )
    parity_sample: int = Field(default=500, ge=1, description="Entities sampled per view.")
    parity_tolerance: float = Field(default=1e-6, ge=0, description="Relative, for floats.")


class ContentSettings(BaseModel):
    """Content embeddings (see docs/content.md). Embedder options apply when it is fitted
    (first build, ``--rebuild``); changing one makes the next build a full refit."""

    dim: int = Field(default=128, ge=8, le=1024, description="Embedding width.")
    text_encoder: Literal["auto", "tfidf", "minilm"] = "auto"
    text_dim: int = Field(default=64, ge=2, le=1024, description="TF-IDF + SVD components.")
    max_categories: int = Field(default=64, ge=1, description="Categories kept; rest 'other'.")
    block_weights: dict[str, float] | None = Field(
        default=None, description="audio, attributes, categories, metadata, text."
    )
    audio_workers: int | None = Field(default=None, ge=1, description="Default: one per core.")
    audio_timeout_seconds: float = Field(default=60.0, gt=0, description="Per audio file.")
    audio_max_seconds: float = Field(default=600.0, gt=0, description="Analysed per file.")
    audio_cache_dir: Path | None = Field(
        default=None,
        description="numba's compiled librosa kernels (default ~/.cache/tastebud/numba).",
    )


class Settings(BaseSettings):
    """All of tastebud's settings. Create with ``load_settings()``; never at import time."""

    model_config = SettingsConfigDict(
        env_prefix="TASTEBUD_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".tastebud")
    database_url: str | None = None
    online_url: str | None = None
    artifacts_url: str | None = None
    datasets_cache: Path | None = None
    datasets_mirror: str | None = None
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    events: EventRules = Field(default_factory=EventRules)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    trending: TrendingSettings = Field(default_factory=TrendingSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    content: ContentSettings = Field(default_factory=ContentSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = find_config_file()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("home", "datasets_cache")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"embedded://{self.home / 'db'}"

    @cached_property
    def resolved_online_url(self) -> str:
        return self.online_url or f"sqlite://{self.home / 'online.db'}"

    @cached_property
    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or str(self.home / "artifacts")

    @cached_property
    def resolved_features_offline_url(self) -> str:
        if self.features.offline_url:
            return self.features.offline_url
        if self.resolved_database_url.startswith(("postgresql:", "postgres:")):
            return self.resolved_database_url
        return f"parquet://{self.home / 'features'}"

    @cached_property
    def resolved_datasets_cache(self) -> Path:
        return self.datasets_cache or self.home / "datasets"


def find_config_file() -> Path | None:
    """``$TASTEBUD_CONFIG`` (which must exist) or ``./tastebud.toml`` (if it exists)."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV}={explicit} does not name a file")
        return path
    local = Path.cwd() / CONFIG_FILENAME
    return local if local.is_file() else None


def load_settings(**overrides: object) -> Settings:
    """Read the config file and environment; keyword overrides win over both."""
    return Settings(**overrides)  # type: ignore[arg-type]
