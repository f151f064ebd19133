"""Opening the feature store of a deployment from its settings: the registry (built-in and
configured manifests), the offline store, and the online side over the process's online
key-value store. Closing it closes the offline store; the key-value store belongs to
``Stores``."""

from __future__ import annotations

from dataclasses import dataclass

from tastebud.config import Settings
from tastebud.features.offline import OfflineStore, open_offline_store
from tastebud.features.online import FeatureOnlineStore
from tastebud.features.serving import FeatureService
from tastebud.features.views import FeatureRegistry
from tastebud.stores import Closeable, OnlineStore


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
