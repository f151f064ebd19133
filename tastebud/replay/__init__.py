"""Replaying recorded events as a live stream (``tastebud replay``, docs/replay.md).

Layer (docs/architecture.md): may import ``data`` (the loaders that read the file),
``client`` (the HTTP gateway's client), ``stores`` (the straight path) and the core; only
``cli`` imports it.
"""

from tastebud.replay.stream import (
    PATTERNS,
    LoadedEvents,
    ReplayError,
    ReplayInterrupted,
    ReplayPlan,
    ReplayReport,
    Target,
    TargetFailed,
    load_events,
    replay,
    schedule,
)
from tastebud.replay.targets import GatewayTarget, StoreTarget

__all__ = [
    "PATTERNS",
    "GatewayTarget",
    "LoadedEvents",
    "ReplayError",
    "ReplayInterrupted",
    "ReplayPlan",
    "ReplayReport",
    "StoreTarget",
    "Target",
    "TargetFailed",
    "load_events",
    "replay",
    "schedule",
]
