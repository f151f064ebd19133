"""Embedding a deployment's catalog: stores in, a registered version out. Shared by
``tastebud content embed`` and the ``embed`` job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tastebud.config import Settings
from tastebud.content.artifact import embedding_registry, latest_artifact, register_artifact
from tastebud.content.assembler import DEFAULT_WEIGHTS
from tastebud.content.embedder import EmbedOptions
from tastebud.content.metadata import item_event_counts
from tastebud.content.pipeline import AudioSettings, BuildResult, build, pool_runner
from tastebud.registry import ModelLoadError, ModelRegistry, ModelVersion
from tastebud.stores import Stores


@dataclass
class EmbedOutcome:
    result: BuildResult
    version: ModelVersion | None  # None when nothing changed

    def summary(self) -> dict[str, Any]:
        report = self.result.artifact.report if self.result.artifact else {}
        return {
            "mode": self.result.mode,
            "version": self.version.model_version if self.version else None,
            "processed": self.result.processed,
            "reused": self.result.reused,
            "removed": self.result.removed,
            "audio_deferred": self.result.deferred,
            "failures": len(self.result.failures),
            "failures_by_reason": report.get("failures_by_reason", {}),
            "coverage": report.get("coverage", {}),
        }


def options_from(settings: Settings, **changes: Any) -> EmbedOptions:
    """The embedder options of ``[content]`` in the settings, with ``changes`` applied."""
    content = settings.content
    options = EmbedOptions(
        dim=content.dim,
        text_dim=content.text_dim,
        text_encoder=content.text_encoder,
        max_categories=content.max_categories,
        weights=dict(content.block_weights or DEFAULT_WEIGHTS),
    )
    return replace(options, **changes)


def audio_from(settings: Settings, **changes: Any) -> AudioSettings:
    content = settings.content
    audio = AudioSettings(
        content.audio_workers,
        content.audio_timeout_seconds,
        content.audio_max_seconds,
        content.audio_cache_dir,
    )
    return replace(audio, **{k: v for k, v in changes.items() if v is not None})


def registry_for(settings: Settings, stores: Stores) -> ModelRegistry:
    return embedding_registry(stores.artifacts, cache_dir=settings.home / "cache" / "embeddings")


def embed_catalog(
    settings: Settings,
    stores: Stores,
    *,
    only: Sequence[str] | None = None,
    rebuild: bool = False,
    options: EmbedOptions | None = None,
    audio: AudioSettings | None = None,
    now: datetime | None = None,
    before_register: Callable[[], None] | None = None,
    audio_stop_at: float | None = None,
) -> EmbedOutcome:
    """Build (first run, ``rebuild``, changed options) or update the catalog's embeddings and
    register the new version as ``production``. Options and audio settings default to the
    ``[content]`` settings. ``before_register`` runs just before anything visible is
    written, and between audio files (the job's cancellation check); ``audio_stop_at``
    (``time.monotonic()``) defers the audio files not started by then to the next run."""
    registry = registry_for(settings, stores)
    try:
        previous = latest_artifact(registry)  # on a rebuild too: its audio features are reused
    except ModelLoadError:
        if not rebuild:
            raise
        previous = None
    items = list(stores.catalog.iter_items())
    result = build(
        items,
        lambda: item_event_counts(stores.events),
        previous,
        options=options or options_from(settings),
        only=only,
        rebuild=rebuild,
        audio_runner=pool_runner(audio or audio_from(settings)),
        now=now,
        audio_stop_at=audio_stop_at,
        check=before_register,
    )
    if result.artifact is None:
        return EmbedOutcome(result, None)
    if before_register is not None:
        before_register()
    version = register_artifact(registry, result.artifact, {"mode": result.mode})
    return EmbedOutcome(result, version)
