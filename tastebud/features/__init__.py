"""The feature store: feature views declared in YAML manifests (``views``), an offline
store of every value with its event time (``offline``: Parquet/DuckDB or PostgreSQL), an
online store of the latest values over the process's key-value store (``online``),
materialization between them, parity checks, and serving (``serving``; its route is
``api/routes/features.py``). See docs/features.md.

Layer (docs/architecture.md): may import ``content``, ``signals``, ``models``, ``registry``,
``data``, ``stores`` and the core (and ``training``, ``engines``); never ``ranking``,
``jobs`` or ``api`` (its route is ``api/routes/features.py``).
"""

from tastebud.features.offline import (
    FeatureVersionConflict,
    OfflineStore,
    UnknownFeatures,
)
from tastebud.features.online import FeatureOnlineStore
from tastebud.features.serving import FeatureResult, FeatureService
from tastebud.features.store import (
    FeatureStore,
    load_registry,
    open_feature_store,
    open_offline_store,
)
from tastebud.features.views import (
    FeatureRef,
    FeatureRegistry,
    FeatureSpec,
    FeatureView,
    ManifestError,
)

__all__ = [
    "FeatureOnlineStore",
    "FeatureRef",
    "FeatureRegistry",
    "FeatureResult",
    "FeatureService",
    "FeatureSpec",
    "FeatureStore",
    "FeatureVersionConflict",
    "FeatureView",
    "ManifestError",
    "OfflineStore",
    "UnknownFeatures",
    "load_registry",
    "open_feature_store",
    "open_offline_store",
]
