"""Typed settings of every ranking component: the ``[ranking]`` table of tastebud.toml.

One ``RankingSettings`` object describes a whole pipeline. A request (an experiment variant,
later) may override any field with a nested dict (``settings.with_overrides({"mmr":
{"diversity": 0.5}})``), validated like the file, so changing ranking needs no redeploy.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field


def json_integer(value: Any) -> Any:
    """JSON's integers: 13 and 13.0 (JSON Schema calls both an integer), never ``true``.
    Here, at the bottom of the core, because overrides need it and ``schemas`` (which
    imports the settings) builds its ``JsonInt`` on it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def json_integers(value: Any) -> Any:
    """``value`` with its integral floats as ints (``schemas.JsonInt`` for nested JSON,
    before a strict validation)."""
    if isinstance(value, dict):
        return {key: json_integers(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [json_integers(inner) for inner in value]
    return json_integer(value)


class _Section(BaseModel):
    # No Infinity or NaN: TOML has them, and a JSON override's 1e999 parses to infinity.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CandidateSettings(_Section):
    """How many candidates each source proposes; ``max_total`` caps the merged set."""

    cf: int = Field(default=300, ge=0, le=5_000, description="CF top-N.")
    content: int = Field(default=100, ge=0, le=5_000, description="Near the recent items.")
    trending: int = Field(default=50, ge=0, le=1_000)
    popular: int = Field(default=100, ge=0, le=5_000)
    fresh: int = Field(default=50, ge=0, le=1_000, description="Newest active items.")
    fresh_days: float = Field(default=14.0, gt=0, description="An item is new this long.")
    max_total: int = Field(default=500, ge=1, le=10_000)
    recent_items: int = Field(
        default=20, ge=1, le=200, description="Recent items the content candidates start from."
    )
    exact_threshold: int = Field(
        default=200_000,
        ge=0,
        description="Catalogs up to this many items are scored exactly; larger ones use the "
        "FAISS index the `index` job builds (exact while it has not).",
    )
    ann_ef_search: int = Field(
        default=1_200,
        ge=16,
        le=100_000,
        description="HNSW search depth; about 4x the CF candidates keeps recall near 0.94 "
        "(benchmarks/bench_retrieval.py).",
    )
    exact_screen: bool = Field(
        default=False,
        description="Exact CF top-N through an int8 screen (ranking/screen.py) for catalogs of "
        "20,000 items or more: the same items and scores as the full product; off until it is "
        "measured cheaper in instructions as well as CPU time (docs/benchmarks.md, issue 17).",
    )


class BlendSettings(_Section):
    """score = ramp * (alpha * cf + (1 - alpha) * content) + (1 - ramp) * prior; every term
    min-max normalised to [0, 1] over the candidates (see docs/serving.md)."""

    alpha: float = Field(default=0.8, ge=0, le=1, description="Weight of CF against content.")


class MmrSettings(_Section):
    """Maximal marginal relevance: pick argmax (1 - diversity) * relevance - diversity *
    max similarity to the items already picked."""

    enabled: bool = True
    diversity: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Lambda: 0 is plain ranking. 0.3 cost 2.4% NDCG@10 for +6.6% intra-list "
        "diversity on MovieLens 100K (docs/benchmarks.md).",
    )


class CreatorCapSettings(_Section):
    enabled: bool = True
    max_share: float = Field(default=0.3, gt=0, le=1, description="Of a list, per creator.")


class CategoryBalanceSettings(_Section):
    enabled: bool = False
    max_share: float = Field(default=0.5, gt=0, le=1, description="Per primary category.")


class RecencySettings(_Section):
    """boost = min(cap, weight * 2^(-age_days / half_life_days)), added to the blended score."""

    weight: float = Field(default=0.1, ge=0, le=1)
    half_life_days: float = Field(default=14.0, gt=0)
    cap: float = Field(default=0.1, ge=0, le=1)


class FilterSettings(_Section):
    consumed: bool = Field(default=True, description="Drop what the user already consumed.")
    negative: bool = Field(default=True, description="Drop items the user disliked or skipped.")
    inactive: bool = Field(default=True, description="Drop items the catalog marks inactive.")


class ColdStartSettings(_Section):
    min_interactions: int = Field(
        default=5, ge=1, description="Below this the CF weight grows with each interaction."
    )


class RankingSettings(_Section):
    candidates: CandidateSettings = Field(default_factory=CandidateSettings)
    blend: BlendSettings = Field(default_factory=BlendSettings)
    mmr: MmrSettings = Field(default_factory=MmrSettings)
    creator_cap: CreatorCapSettings = Field(default_factory=CreatorCapSettings)
    category_balance: CategoryBalanceSettings = Field(default_factory=CategoryBalanceSettings)
    recency: RecencySettings = Field(default_factory=RecencySettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)
    cold_start: ColdStartSettings = Field(default_factory=ColdStartSettings)

    def with_overrides(self, overrides: dict[str, Any] | None) -> Self:
        """A copy with ``overrides`` (nested, partial) applied and validated; raises
        pydantic's ValidationError naming the field on a bad value or unknown name."""
        if not overrides:
            return self
        # Strict, as JSON Schema reads JSON: a boolean is not 0, 413.0 is an integer.
        merged = _merge(self.model_dump(), json_integers(overrides))
        return type(self).model_validate(merged, strict=True)


class ServingSettings(BaseModel):
    """The serving process: where its model comes from and how often it looks again."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model_alias: Literal["production", "canary", "shadow"] = "production"
    poll_seconds: float = Field(
        default=2.0, gt=0, description="How often each worker checks the alias and embeddings."
    )
    catalog_refresh_seconds: float = Field(default=60.0, gt=0)
    retry_failed_seconds: float = Field(
        default=300.0, gt=0, description="A version that failed to load is retried after this."
    )
    recent_activity: int = Field(
        default=50, ge=1, le=1_000, description="Recent events kept per user for real-time."
    )
    recent_activity_ttl_days: float = Field(default=30.0, gt=0)
    max_k: int = Field(default=200, ge=1, le=10_000, description="Largest k a request may ask.")
    max_batch_users: int = Field(default=100, ge=1, le=10_000)
    precomputed: bool = Field(
        default=True,
        description="Serve the lists the `recommendations` job precomputed while they hold.",
    )
    precomputed_k: int = Field(
        default=20, ge=1, le=1_000, description="The k the job precomputes (and serves) lists for."
    )
    precomputed_max_age_seconds: float = Field(
        default=7_200.0,
        gt=0,
        description="A precomputed list older than this is ranked again (trending moves).",
    )


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
