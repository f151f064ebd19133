"""Opening the feature store of a deployment from its settings: the registry (built-in and
configured manifests), the offline store (a backend chosen by URL: the opener lives here,
above the interface and its backends), and the online side over the process's online
key-value store. Closing it closes the offline store; the key-value store belongs to
``Stores``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tastebud.config import Settings
from tastebud.features.offline import OfflineStore
from tastebud.features.online import FeatureOnlineStore
from tastebud.features.serving import FeatureService
from tastebud.features.views import FeatureRegistry
from tastebud.stores import Closeable, OnlineStore, StoreError, local_path


@dataclass
class FeatureStore(Closeable):
    registry: FeatureRegistry
    offline: OfflineStore
    online: FeatureOnlineStore
    service: FeatureService

    def close(self) -> None:
        self.offline.close()


def load_registry(settings: Settings) -> FeatureRegistry:
    """Raises ManifestError naming the file and field of a bad manifest."""
    return FeatureRegistry.load(
        settings.features.manifests, builtin=settings.features.builtin_manifests
    )


def open_feature_store(settings: Settings, online: OnlineStore) -> FeatureStore:
    registry = load_registry(settings)
    offline = open_offline_store(settings.resolved_features_offline_url)
    options = settings.features
    feature_online = FeatureOnlineStore(
        online,
        cache_entries=options.cache_entries,
        cache_seconds=options.cache_seconds,
        generation_check_seconds=options.generation_check_seconds,
    )
    service = FeatureService(registry, feature_online, offline)
    return FeatureStore(registry, offline, feature_online, service)


def open_offline_store(url: str) -> OfflineStore:
    """The offline store a URL names: ``parquet:///dir`` or ``postgresql://...``."""
    scheme = urlsplit(url).scheme
    if scheme == "parquet":
        # lazy: DuckDB loads when an offline store is opened, not with the feature package
        from tastebud.features.offline_parquet import ParquetOfflineStore

        return ParquetOfflineStore(local_path(url))
    if scheme in ("postgresql", "postgres"):
        # lazy: psycopg and its pool load for a PostgreSQL URL only
        from tastebud.features.offline_postgres import PostgresOfflineStore

        return PostgresOfflineStore(url)
    raise StoreError(
        f"unsupported offline feature store URL {scheme!r}: use parquet:///dir or postgresql://..."
    )
