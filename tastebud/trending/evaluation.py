"""How well the detector finds the trends a synthetic world injected (``truth.json``).

Protocol (the tests, ``benchmarks/bench_trending.py`` and docs/benchmarks.md use it): the
detector runs every ``step_hours`` from the first moment a full window exists (start +
``baseline_days`` + ``recent_hours``) to the end of the world; at the trending job's hourly
cadence, ``step_hours`` is 1.

* A flag (item, moment) is a true positive when that item's injected trend overlaps the
  detection's recent window, else a false positive. Precision = TP / (TP + FP).
* A trend is *eligible* when its onset comes after a clean baseline (start +
  ``baseline_days``): one already running when the world starts has no "before" to
  compare with. Recall = eligible trends flagged at least once while active / eligible.
* The false-positive rate divides false flags by the (item, moment) pairs without an
  active trend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.config import TrendingSettings
from tastebud.trending.detector import detect, engagement


@dataclass(frozen=True)
class InjectedTrend:
    item_id: str
    start: datetime
    end: datetime


@dataclass
class TrendRecovery:
    """What a sweep over a world found, against its injected trends."""

    precision: float
    recall: float
    false_positive_rate: float
    eligible: int
    detected: int
    true_flags: int
    false_flags: int
    detections: int
    missed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "false_positive_rate": round(self.false_positive_rate, 7),
            "eligible": self.eligible,
            "detected": self.detected,
            "true_flags": self.true_flags,
            "false_flags": self.false_flags,
            "detections": self.detections,
            "missed": self.missed,
        }


@dataclass(frozen=True)
class LoadedWorld:
    """A generated world's truth, engagement rows and catalog (item_id, categories,
    created_at), as the detector takes them."""

    truth: dict[str, Any]
    events: pa.Table
    items: pa.Table

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(self.truth["period"]["start"])

    @property
    def end(self) -> datetime:
        return datetime.fromisoformat(self.truth["period"]["end"])

    @property
    def trends(self) -> list[InjectedTrend]:
        return [
            InjectedTrend(
                t["item_id"], datetime.fromisoformat(t["start"]), datetime.fromisoformat(t["end"])
            )
            for t in self.truth["trending"]
        ]


def load_world(folder: Path, weights: Mapping[str, float]) -> LoadedWorld:
    """Read a world that ``tastebud.data.synthetic.generate_world`` wrote."""
    truth = json.loads((folder / "truth.json").read_text())
    events = engagement(pq.read_table(folder / "events.parquet"), weights)
    items = pq.read_table(folder / "items.parquet", columns=["item_id", "categories", "created_at"])
    return LoadedWorld(truth, events, items)


def active_trends(trends: list[InjectedTrend], moment: datetime, recent_hours: int) -> set[str]:
    """Items whose injected trend overlaps the recent window ending at ``moment``."""
    recent = moment - timedelta(hours=recent_hours)
    return {trend.item_id for trend in trends if trend.start < moment and trend.end > recent}


def sweep_moments(
    world: LoadedWorld, params: TrendingSettings, step_hours: float
) -> list[datetime]:
    """Every ``step_hours`` from the first full window to the end of the world."""
    moment = world.start + timedelta(days=params.baseline_days, hours=params.recent_hours)
    moments = []
    while moment <= world.end:
        moments.append(moment)
        moment += timedelta(hours=step_hours)
    return moments


def trend_recovery(
    world: LoadedWorld, params: TrendingSettings, step_hours: float = 1.0
) -> TrendRecovery:
    """Run the detector over the world (see the module docstring) and score its flags."""
    trends = world.trends
    clean_after = world.start + timedelta(days=params.baseline_days)
    true_flags = false_flags = negatives = detections = 0
    eligible: set[str] = set()
    detected: set[str] = set()
    for moment in sweep_moments(world, params, step_hours):
        found = detect(world.events, moment, params, item_created=world.items)
        flagged = set(found.items.column("item_id").to_pylist())
        active = active_trends(trends, moment, params.recent_hours)
        eligible |= {t.item_id for t in trends if t.item_id in active and t.start >= clean_after}
        true_flags += len(flagged & active)
        false_flags += len(flagged - active)
        negatives += world.items.num_rows - len(active)
        detected |= flagged & eligible
        detections += 1
    return TrendRecovery(
        precision=true_flags / max(1, true_flags + false_flags),
        recall=len(detected) / max(1, len(eligible)),
        false_positive_rate=false_flags / max(1, negatives),
        eligible=len(eligible),
        detected=len(detected),
        true_flags=true_flags,
        false_flags=false_flags,
        detections=detections,
        missed=sorted(eligible - detected),
    )
