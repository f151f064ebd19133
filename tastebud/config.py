"""Settings: one TOML file plus ``TASTEBUD_*`` environment overrides; backends chosen by URL.

The file is ``$TASTEBUD_CONFIG`` if set, else ``./tastebud.toml`` if present. Environment
variables win over the file; nested keys use ``__`` (``TASTEBUD_EVENTS__MAX_CONTEXT_BYTES=8192``).

Over 400 lines because it is every table of the one settings file, each a short typed class
with its defaults and checks: docs/reference.md is rendered from them in this order, and a
reader looks for a setting in one place (the ``[ranking]`` tables, the largest, are in
``ranking_config.py``).
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tastebud.ranking_config import RankingSettings, ServingSettings

CONFIG_ENV = "TASTEBUD_CONFIG"
CONFIG_FILENAME = "tastebud.toml"

ValueKind = Literal["none", "rating", "seconds", "price", "count"]


def on_defaults(defaults: dict[str, Any], configured: dict[str, Any]) -> dict[str, Any]:
    """A table of named entries as configured on top of its defaults: an entry adds to or
    replaces the default of its name, ``name = false`` removes it."""
    merged = dict(defaults)
    for name, spec in configured.items():
        if spec is False:
            merged.pop(name, None)
        else:
            merged[name] = spec
    return merged


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
        merged = on_defaults(default_event_types(), value)
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
    threads: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Threads per worker for blocking request work (appends, catalog reads).",
    )
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
    key_outage_seconds: float = Field(
        default=300.0,
        ge=0,
        description="While the key store is unavailable, a key found valid this recently "
        "still authenticates (a key revoked meanwhile too, until the store answers again).",
    )
    rate_limit_per_second: float = Field(default=200.0, gt=0, description="Requests per key.")
    rate_limit_burst: float = Field(default=400.0, ge=1)
    shared_rate_limits: bool = Field(
        default=True,
        description="With Redis as the online store, keep each key's bucket in Redis (one "
        "limit across every worker and node, one Redis call per request); false: per worker.",
    )
    key_miss_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a worker remembers an unknown key, answering its repeats "
        "without a store lookup (a key created meanwhile works after this).",
    )
    auth_failures_per_second: float = Field(
        default=1.0, gt=0, description="Failed key checks per client address, then 429."
    )
    auth_failure_burst: float = Field(default=20.0, ge=1)
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Total size of a request's headers (else 431)."
    )
    max_headers: int = Field(default=100, ge=8, description="Headers per request (else 431).")
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


class BudgetSettings(BaseModel):
    """Budgets of the Redis and PostgreSQL calls a server makes while serving a request
    (``tastebud.stores.budget``): a short timeout per call, and a circuit breaker per store
    so a hung or stopped dependency costs one timeout, not one per call. Jobs and the
    server's background work keep the stores' long timeouts."""

    online_ms: float = Field(
        default=50.0, gt=0, description="Redis: connect and reply timeout of one call."
    )
    database_ms: float = Field(
        default=50.0,
        gt=0,
        description="PostgreSQL: wait for a pooled connection, and statement timeout of reads.",
    )
    database_write_ms: float = Field(
        default=1000.0,
        gt=0,
        description="PostgreSQL: statement timeout of writes (an event batch of up to "
        "gateway.max_batch_events rows must fit in it on a healthy database).",
    )
    breaker_failures: int = Field(
        default=3, ge=1, description="Failures in a row that open a store's breaker."
    )
    breaker_reset_seconds: float = Field(
        default=1.0,
        gt=0,
        description="An open breaker fails calls at once this long, then lets one trial through.",
    )
    retry_ms: float = Field(
        default=2000.0,
        ge=0,
        description="A store call retried on the request path (an event append): no retry "
        "starts whose wait would end later than this after the first attempt.",
    )


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
    historical_after_hours: float = Field(
        default=24.0,
        gt=0,
        description="A store whose newest event is older than this is historical: jobs and "
        "features run without a time of their own run as of that event.",
    )
    popularity_window_days: float = Field(default=90.0, gt=0)
    popularity_half_life_days: float = Field(default=7.0, gt=0)
    popularity_top_n: int = Field(default=100, ge=1)
    popularity_min_events: int = Field(
        default=50, ge=1, description="Fewer events in the window: the run is refused."
    )
    popularity_min_items: int = Field(
        default=10,
        ge=1,
        description="Fewer items with a positive score (or fewer than the active catalog, if "
        "smaller): the run is refused.",
    )
    affinity_window_days: float = Field(default=90.0, gt=0)
    affinity_half_life_days: float = Field(default=30.0, gt=0)
    affinity_top_categories: int = Field(default=10, ge=1)
    affinity_min_events: int = Field(
        default=50, ge=1, description="Fewer events in the window: the run is refused."
    )
    engine: Literal["local", "spark"] = Field(
        default="local",
        description="Where batch jobs run: in this process (DuckDB/numpy) or on Apache Spark "
        "(tastebud[spark]; master from spark_master / TASTEBUD_SPARK_MASTER).",
    )
    engines: dict[str, Literal["local", "spark"]] = Field(
        default_factory=dict, description="Per-job engine, overriding `engine` (job -> engine)."
    )
    spark_events_url: str | None = Field(
        default=None,
        description="A Parquet event log partitioned by day (`tastebud export events`) that "
        "Spark jobs read instead of exporting their window on each run.",
    )
    spark_staging_url: str | None = Field(
        default=None,
        description="Where Spark jobs stage the event log as Parquet (any fsspec URL its "
        "executors also read). Default: {home}/spark-staging.",
    )
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
    min_recent_events: int = Field(
        default=100,
        ge=1,
        description="Fewer positive events in the recent window: too little to judge, the "
        "run is refused.",
    )


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
    min_recent_events: int = Field(
        default=50,
        ge=0,
        description="Fewer events in the 30 days before a materialization's end: refused.",
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


class DashboardSettings(BaseModel):
    """The Streamlit dashboard (``tastebud dashboard``, docs/dashboard.md): where it listens
    and the address the server's ``GET /`` links to."""

    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="The dashboard's address, linked from the server's GET / (none: not shown).",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=0, le=65535, description="0 picks a free port.")


class AppSettings(BaseModel):
    """The listener's app at ``/app`` (see docs/app.md): its offline feedback queue limits,
    sent to each device with the app's config."""

    enabled: bool = Field(default=True, description="Serve the app at /app.")
    queue_max_events: int = Field(
        default=500, ge=1, le=100_000, description="Events a device keeps unsent; oldest drop."
    )
    queue_max_age_hours: float = Field(
        default=7 * 24.0, gt=0, description="Unsent events older than this are dropped."
    )


class PushSettings(BaseModel):
    """Web push (the ``push`` job, docs/app.md): who the VAPID claims name, how often a
    listener may be notified and when not."""

    vapid_subject: str = Field(
        default="mailto:tastebud@localhost",
        pattern=r"^(mailto:|https://)",
        description="The VAPID `sub` claim push services may contact (mailto: or https:).",
    )
    max_per_day: int = Field(default=2, ge=0, description="Messages per user per 24 hours.")
    min_gap_hours: float = Field(default=4.0, ge=0, description="Between two messages to a user.")
    quiet_start_hour: int = Field(default=22, ge=0, le=23, description="Local time, 24 h.")
    quiet_end_hour: int = Field(
        default=8, ge=0, le=23, description="Quiet hours end (equal to start: none)."
    )
    default_timezone: str = Field(default="UTC", description="For devices that sent none.")
    new_item_hours: float = Field(default=48.0, gt=0, description="How new a new item is.")
    min_affinity_share: float = Field(
        default=0.1, ge=0, le=1, description="Taste match: the item's categories' share."
    )
    ttl_seconds: int = Field(default=6 * 3600, ge=0, description="Push service keeps it this long.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per request to a push service.")
    history_days: float = Field(default=30.0, gt=0, description="Sent messages remembered.")

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


# The metrics the quality checks report (docs/quality.md): which way is bad ("above": a value
# over the threshold is bad; "below": under it), and the default warn and fail thresholds
# (None: reported, not judged). Thresholds in ``[quality.thresholds]`` or a rules file override
# these, and only these: an unknown name is refused.
QUALITY_METRICS: dict[str, tuple[Literal["above", "below"], float | None, float | None]] = {
    "schema.invalid_share": ("above", 0.0, 0.001),
    "freshness.lag_ratio": ("above", 0.5, 1.0),
    "completeness.session": ("below", None, None),
    "completeness.device": ("below", None, None),
    "completeness.locale": ("below", None, None),
    "completeness.known_item": ("below", None, None),
    "completeness.session_drop": ("above", 0.05, 0.2),
    "completeness.device_drop": ("above", 0.05, 0.2),
    "completeness.locale_drop": ("above", 0.05, 0.2),
    "completeness.known_item_drop": ("above", 0.05, 0.2),
    "volume.drop": ("above", 0.25, 0.4),
    "volume.spike": ("above", 2.0, 3.0),
    "drift.event_type.psi": ("above", 0.1, 0.25),
    "drift.item_popularity.psi": ("above", 0.1, 0.25),
    "drift.user_activity.psi": ("above", 0.1, 0.25),
    "cold_start.user_share": ("above", 0.2, 0.4),
    "cold_start.item_share": ("above", 0.2, 0.4),
    "model.staleness_hours": ("above", 48.0, 168.0),
}
QUALITY_CHECKS = (
    "schema",
    "freshness",
    "completeness",
    "volume",
    "drift",
    "cold_start",
    "staleness",
)


class QualityThreshold(BaseModel):
    """When one quality metric warns and when it fails (either may be absent)."""

    model_config = ConfigDict(extra="forbid")

    warn: float | None = None
    fail: float | None = None

    @field_validator("warn", "fail")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


def check_quality_thresholds(
    thresholds: dict[str, QualityThreshold],
) -> dict[str, QualityThreshold]:
    """Refuse an unknown metric, or a warn threshold on the bad side of its fail threshold,
    naming the metric (``[quality.thresholds]`` and rules files share this)."""
    for name, threshold in thresholds.items():
        if name not in QUALITY_METRICS:
            raise ValueError(
                f"unknown quality metric {name!r}: use one of {', '.join(QUALITY_METRICS)}"
            )
        direction = QUALITY_METRICS[name][0]
        warn, fail = threshold.warn, threshold.fail
        if (
            warn is not None
            and fail is not None
            and ((direction == "above" and warn > fail) or (direction == "below" and warn < fail))
        ):
            raise ValueError(
                f"{name}: warn {warn} must not be past fail {fail} (bad is {direction})"
            )
        if name.endswith(("share", "_drop")) or name.startswith("completeness."):
            for label, value in (("warn", warn), ("fail", fail)):
                if value is not None and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name}.{label}: {value} is a share, within [0, 1]")
        elif any(value is not None and value < 0 for value in (warn, fail)):
            raise ValueError(f"{name}: thresholds must be >= 0")
    return thresholds


class QualitySettings(BaseModel):
    """Data-quality checks (``tastebud.quality``, docs/quality.md): the window they judge,
    what each compares with, and the thresholds of their metrics."""

    window_hours: float = Field(
        default=24.0, gt=0, le=24 * 14, description="The recent window the checks judge."
    )
    thresholds: dict[str, QualityThreshold] = Field(
        default_factory=dict,
        description="Per metric {warn, fail}, over the defaults (docs/quality.md).",
    )
    rules_file: Path | None = Field(
        default=None, description="A TOML file of [thresholds.METRIC] tables, over these."
    )
    critical: list[str] = Field(
        default_factory=lambda: ["schema", "freshness", "volume", "completeness"],
        description="Checks whose failure blocks the train job.",
    )
    gate_train: bool = Field(
        default=True,
        description="The train job runs the checks first; a critical failure refuses it.",
    )
    rating_min: float = Field(default=0.5, description="The rating scale's lowest value.")
    rating_max: float = Field(default=5.0, description="The rating scale's highest value.")
    max_duration_seconds: float = Field(
        default=86_400.0, gt=0, description="Longest plausible seconds value (play, view)."
    )
    freshness_sources: list[Literal["event_type", "device_type"]] = Field(
        default_factory=lambda: ["event_type", "device_type"],
        description="What a source is: events of one type, or from one kind of device.",
    )
    freshness_max_lag_minutes: float = Field(
        default=60.0, gt=0, description="A source's newest event may be this old."
    )
    freshness_expected_users: float = Field(
        default=20.0,
        gt=0,
        description="...or, if longer, the time in which the same hours of previous days "
        "saw this many users of the source (so a quiet source at night is not stale).",
    )
    freshness_lookback_hours: float = Field(
        default=168.0, gt=0, description="A source silent for longer is gone, not stalled."
    )
    volume_baseline_days: int = Field(
        default=7, ge=1, le=60, description="The same hour on this many previous days."
    )
    volume_min_days: int = Field(
        default=3, ge=1, description="Fewer previous days with data: the hour is not judged."
    )
    volume_min_events: float = Field(
        default=50.0, gt=0, description="A baseline hour smaller than this is not judged."
    )
    volume_alpha: float = Field(
        default=0.0001,
        gt=0,
        lt=1,
        description="An hour is anomalous only if its count (or its events per session) this "
        "far off is this unlikely.",
    )
    volume_min_sessions: int = Field(
        default=20,
        ge=2,
        description="Fewer sessions in an hour: its events per session are not judged.",
    )
    drift_top_items: int = Field(
        default=100, ge=1, description="Item popularity: the reference's top items, rest pooled."
    )

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, QualityThreshold]) -> dict[str, QualityThreshold]:
        return check_quality_thresholds(value)

    @field_validator("critical")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in QUALITY_CHECKS]
        if unknown:
            raise ValueError(f"unknown check {unknown[0]!r}: use {', '.join(QUALITY_CHECKS)}")
        return value

    @model_validator(mode="after")
    def _scale(self) -> QualitySettings:
        if not self.rating_min < self.rating_max:
            raise ValueError("rating_min must be below rating_max")
        return self


class RetrainingTriggers(BaseModel):
    """When the ``retrain`` job trains (docs/monitoring.md): each rule fires past its
    threshold; ``None`` turns it off. The same fields make a rules file's ``[triggers]``."""

    model_config = ConfigDict(extra="forbid")

    ndcg_drop: float | None = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="Offline NDCG@10 down by more than this share of its training-time value.",
    )
    score_psi: float | None = Field(
        default=0.25, gt=0, description="PSI of the served scores against training time."
    )
    data_psi: float | None = Field(
        default=0.25, gt=0, description="The data-quality drift check's largest PSI."
    )
    new_events: int | None = Field(
        default=1_000_000, ge=1, description="Events since the model's training data ended."
    )
    new_items: int | None = Field(
        default=1_000, ge=1, description="Items in those events that the model does not know."
    )
    max_age_hours: float | None = Field(
        default=168.0, gt=0, description="Hours since the model's training data ended."
    )


class MonitoringSettings(BaseModel):
    """Model monitoring (``tastebud.monitoring``, docs/monitoring.md) and the retraining
    triggers the ``retrain`` job evaluates."""

    eval_days: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="Offline evaluation: the most recent days judged (a full window only).",
    )
    max_users: int = Field(
        default=2_000, ge=10, description="Users sampled for the evaluation and the scores."
    )
    min_users: int = Field(
        default=20, ge=1, description="Fewer judgeable users: the evaluation cannot run."
    )
    ndcg_min_z: float = Field(
        default=2.33,
        ge=0,
        description="ndcg_drop fires only when the drop is this many standard errors "
        "(over users) big: 2.33, one chance in a hundred.",
    )
    triggers: RetrainingTriggers = Field(default_factory=RetrainingTriggers)
    rules_file: Path | None = Field(
        default=None, description="A TOML file whose [triggers] table wins over these."
    )
    cooldown_hours: float = Field(
        default=24.0,
        ge=0,
        description="After a triggered training, no other for this long (by interval end).",
    )
    retrain: bool = Field(default=True, description="A firing trigger runs the train job.")
    online_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="Online click-through and conversion per model version: the recent "
        "hours of exposures judged.",
    )
    shadow_alias: Literal["shadow", "canary"] = Field(
        default="shadow",
        description="The registry alias of the model that ranks requests in the shadow.",
    )
    shadow_sample: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Share of served lists the shadow model ranks too (off the request path).",
    )
    shadow_queue: int = Field(
        default=64, ge=1, le=10_000, description="Lists waiting for the shadow; more: dropped."
    )


MetricKind = Literal["mean", "ratio", "proportion", "quantile", "coverage"]
MeasureAggregate = Literal[
    "count",
    "value",
    "items",
    "lists",
    "empty_lists",
    "nonempty_lists",
    "latency_ms",
    "diversity",
    "sessions",
    "session_seconds",
    "distinct_items",
]


EVENT_AGGREGATES = frozenset({"count", "value", "sessions", "session_seconds"})
# Exposure aggregates with a pre-period form: what the user was served before the experiment
# (CUPED's covariate). Latency, diversity and coverage describe serving, not the user.
PRE_PERIOD_EXPOSURE_AGGREGATES = frozenset({"lists", "items", "empty_lists", "nonempty_lists"})


class MeasureSpec(BaseModel):
    """One per-user quantity, summed over the user's attributed events or counted exposures
    (``tastebud.experiments.metrics`` says which count).

    From ``events`` of the given types (an empty list means every type): their ``count``,
    the sum of their ``value``, or ``sessions`` (distinct session ids) and
    ``session_seconds`` (per session, last event minus first, summed). From ``exposures``:
    served ``lists``, ``items`` shown, ``empty_lists``, ``nonempty_lists``, ``latency_ms``
    (summed; a quantile metric also gets each exposure's value), ``diversity`` (per
    non-empty list, the share of distinct creators among its items, summed) and
    ``distinct_items`` (per variant, for coverage; per user it holds the items shown)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["events", "exposures"]
    events: list[str] = Field(
        default_factory=list, description="Event types (events only); empty: every type."
    )
    aggregate: MeasureAggregate = "count"

    @model_validator(mode="after")
    def _fits_source(self) -> MeasureSpec:
        if (self.source == "events") != (self.aggregate in EVENT_AGGREGATES):
            raise ValueError(f"aggregate {self.aggregate!r} does not apply to {self.source}")
        if self.source == "exposures" and self.events:
            raise ValueError("event types apply to events only")
        return self

    @property
    def has_pre_period(self) -> bool:
        """Whether the user's pre-period holds this quantity (CUPED's covariate)."""
        return self.source == "events" or self.aggregate in PRE_PERIOD_EXPOSURE_AGGREGATES


class MetricSpec(BaseModel):
    """An experiment metric, computed per user then per variant (docs/experiments.md).

    ``mean``: the mean over users of the numerator; ``proportion``: the share of users whose
    numerator is above zero; ``ratio``: sum of numerators over sum of denominators (the
    delta method gives its variance); ``quantile``: the ``quantile`` of the numerator's
    values (latency); ``coverage``: distinct items served over the active catalog."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    kind: MetricKind
    numerator: MeasureSpec
    denominator: MeasureSpec | None = None
    quantile: float = Field(default=0.95, gt=0, lt=1)
    higher_is_better: bool = True
    window_hours: float = Field(
        default=24.0,
        gt=0,
        description="Events that name no list count when they come this long after one of "
        "the user's exposures (an event naming a list of the experiment in "
        "`context.list_id` counts exactly, whenever it comes).",
    )

    @model_validator(mode="after")
    def _denominator(self) -> MetricSpec:
        if (self.kind == "ratio") != (self.denominator is not None):
            raise ValueError("a ratio metric needs a denominator; other kinds take none")
        if (self.kind == "coverage") != (self.numerator.aggregate == "distinct_items"):
            raise ValueError("coverage metrics, and only they, count distinct_items")
        if self.kind == "quantile" and self.numerator.aggregate != "latency_ms":
            raise ValueError("a quantile metric reads per-exposure latency_ms")
        return self

    @property
    def has_pre_period(self) -> bool:
        measures = [self.numerator, *([self.denominator] if self.denominator else [])]
        return all(measure.has_pre_period for measure in measures)


def _events(*types: str, aggregate: MeasureAggregate = "count") -> MeasureSpec:
    return MeasureSpec(source="events", events=list(types), aggregate=aggregate)


def _exposures(aggregate: MeasureAggregate) -> MeasureSpec:
    return MeasureSpec(source="exposures", aggregate=aggregate)


def default_metrics() -> dict[str, MetricSpec]:
    """The metrics a music service or a shop starts with; ``[experiments.metrics]`` adds
    to them or replaces one by name."""
    return {
        "click_through": MetricSpec(
            description="Clicks per item shown.",
            kind="ratio",
            numerator=_events("click"),
            denominator=_exposures("items"),
        ),
        "conversion": MetricSpec(
            description="Share of users with a purchase or a like.",
            kind="proportion",
            numerator=_events("purchase", "like"),
        ),
        "plays_per_user": MetricSpec(kind="mean", numerator=_events("play")),
        "play_time": MetricSpec(
            description="Seconds played per user.",
            kind="mean",
            numerator=_events("play", aggregate="value"),
        ),
        "skip_rate": MetricSpec(
            description="Skips per play or skip.",
            kind="ratio",
            numerator=_events("skip"),
            denominator=_events("play", "skip"),
            higher_is_better=False,
        ),
        "session_length": MetricSpec(
            description="Seconds per session.",
            kind="ratio",
            numerator=_events(aggregate="session_seconds"),
            denominator=_events(aggregate="sessions"),
        ),
        "diversity": MetricSpec(
            description="Mean intra-list diversity (share of distinct creators) of the "
            "non-empty lists served.",
            kind="ratio",
            numerator=_exposures("diversity"),
            denominator=_exposures("nonempty_lists"),
        ),
        "coverage": MetricSpec(
            description="Share of the active catalog served at least once.",
            kind="coverage",
            numerator=_exposures("distinct_items"),
        ),
        "empty_lists": MetricSpec(
            description="Share of served lists with no item.",
            kind="ratio",
            numerator=_exposures("empty_lists"),
            denominator=_exposures("lists"),
            higher_is_better=False,
        ),
        "latency_p95": MetricSpec(
            description="95th percentile of serving latency (ms).",
            kind="quantile",
            numerator=_exposures("latency_ms"),
            higher_is_better=False,
        ),
    }


class ExperimentSettings(BaseModel):
    """Online experiments (``tastebud.experiments``, docs/experiments.md): how fast workers
    see a change, exposure logging, the analysis' thresholds and the metric definitions."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=True, description="Serving assigns variants.")
    poll_seconds: float = Field(
        default=2.0, gt=0, le=5, description="How often each worker rereads the definitions."
    )
    exposures: bool = Field(default=True, description="Log every served list as an exposure.")
    exposure_flush_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Exposures are written at least this often."
    )
    exposure_batch: int = Field(default=1_000, ge=1, le=100_000)
    store_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="A worker that cannot reach the experiment store keeps its experiments "
        "this long (a database restart), then serves control to everyone.",
    )
    compaction_min_age_seconds: float = Field(
        default=300.0,
        ge=60,
        description="exposures-compact merges embedded exposure files at least this old "
        "(many flush periods: a live writer's files are left alone).",
    )
    compaction_grace_seconds: float = Field(
        default=900.0,
        ge=60,
        description="Merged inputs stay on disk this long, for readers holding the old list.",
    )
    compaction_target_rows: int = Field(
        default=1_000_000, ge=10_000, description="A merged exposure file closes at this many rows."
    )
    compaction_target_mb: int = Field(
        default=64,
        ge=1,
        le=4_096,
        description="A merged exposure file closes at this many megabytes (or target rows).",
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    srm_p: float = Field(
        default=0.001, gt=0, lt=0.5, description="A sample-ratio test below this flags SRM."
    )
    large_lift: float = Field(
        default=0.25, gt=0, description="A relative lift beyond this is flagged as suspicious."
    )
    pre_period_days: float = Field(
        default=14.0, ge=0, description="CUPED's covariate: the same metric this long before."
    )
    guardrails_minutes: float = Field(
        default=5.0, gt=0, description="How often the `guardrails` job runs."
    )
    webhook_url: str | None = Field(
        default=None, description="A guardrail breach is also POSTed here (JSON)."
    )
    metrics: dict[str, MetricSpec] = Field(
        default_factory=default_metrics,
        description="Metric definitions on top of the defaults; `name = false` removes one.",
    )

    @field_validator("metrics", mode="before")
    @classmethod
    def _merge_metrics(cls, value: Any) -> Any:
        return on_defaults(default_metrics(), value) if isinstance(value, dict) else value


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows, else a ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name[:64]!r} (an IANA name such as Europe/Paris)"
        ) from None
    return name


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
    spark_master: str = Field(
        default="local[*]",
        description="The Spark master of jobs run on Spark: local[N], spark://host:port, "
        "k8s://https://host:port.",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Spark properties for the session tastebud starts (jobs on Spark, "
        "mllib-als), such as spark.driver.memory or spark.executor.memory: a [spark_conf] "
        'table in tastebud.toml, or TASTEBUD_SPARK_CONF=\'{"spark.driver.memory": "8g"}\'.',
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    events: EventRules = Field(default_factory=EventRules)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    trending: TrendingSettings = Field(default_factory=TrendingSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    content: ContentSettings = Field(default_factory=ContentSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    app: AppSettings = Field(default_factory=AppSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    experiments: ExperimentSettings = Field(default_factory=ExperimentSettings)

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

    @model_validator(mode="after")
    def _metric_events(self) -> Settings:
        """Experiment metrics count configured event types only: a default metric whose
        types were removed (a shop without ``play``) is left out; a configured one is an
        error."""
        defaults = default_metrics()
        for name, metric in list(self.experiments.metrics.items()):
            types = [*metric.numerator.events, *(metric.denominator or metric.numerator).events]
            unknown = [kind for kind in types if kind not in self.events.types]
            if not unknown:
                continue
            if defaults.get(name) == metric:
                del self.experiments.metrics[name]
                continue
            raise ValueError(f"experiments.metrics.{name}: unknown event type {unknown[0]!r}")
        return self

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _spark_properties(cls, value: Any) -> Any:
        """Spark's property names start with ``spark.`` (it ignores any other with a warning
        nobody reads); numbers and booleans are written as Spark spells them."""
        if not isinstance(value, dict):
            return value
        properties = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key.startswith("spark."):
                raise ValueError(f"{key!r} is not a Spark property (they start with 'spark.')")
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, int | float):
                item = str(item)
            properties[key] = item
        return properties

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
