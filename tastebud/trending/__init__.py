"""Trending: the detector (pure Arrow/DuckDB/numpy), reading published lists, and the route.

Layer (docs/architecture.md): may import ``data``, ``stores`` and the core; never
``engines`` (they import its aggregates) or anything above (its route is
``api/routes/trending.py``).
"""

from tastebud.trending.detector import StaleDataError, TrendingResult, detect, engagement
from tastebud.trending.service import NothingPublished, TrendingList, trending_items

__all__ = [
    "NothingPublished",
    "StaleDataError",
    "TrendingList",
    "TrendingResult",
    "detect",
    "engagement",
    "trending_items",
]
