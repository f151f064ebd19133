"""Trending: the detector (pure Arrow/DuckDB/numpy), reading published lists, and the route."""

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
