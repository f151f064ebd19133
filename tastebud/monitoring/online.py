"""Online click-through and conversion per model version, from the exposure log: what the
users were shown by each version over the recent ``[monitoring] online_hours``, and what
they did after.

Per version (its exposures' ``model_version``; ``none`` for lists no model ranked):

* ``click_through``: the clicks attributed to its lists per item it showed;
* ``conversion``: the share of the users it was shown to (``user_id``, else the anonymous
  ``session_id``) with a purchase or a like attributed to its lists.

Attribution is the experiments' (``tastebud.experiments.attribution``, one DuckDB pass per
version): an event whose ``context.list_id`` names one of the version's lists counts for it
exactly; an event naming no list counts when it comes within the metric's ``window_hours``
after one of the user's exposures to that version (so a user shown two versions within the
window, a rollout's swap, may count toward both). The event types and windows are the
``click_through`` and ``conversion`` metrics of ``[experiments.metrics]`` (their defaults
when the configuration removed them).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from tastebud.config import MetricSpec, Settings, default_metrics
from tastebud.experiments import attribution, sources
from tastebud.experiments.exposure import EXPOSURE_SCHEMA
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.experiments.sources import Source, SourceFactory
from tastebud.monitoring.results import MonitorCheck
from tastebud.observability import metrics
from tastebud.schemas import EVENT_SCHEMA

if TYPE_CHECKING:
    from tastebud.stores import Stores

MEMORY_MB = 1_024

EXPOSED = """
CREATE OR REPLACE TEMP TABLE exposed AS
SELECT coalesce(model_version, 'none') AS version, coalesce(user_id, session_id) AS unit,
       list_id, epoch_us(served_at) AS ts, len(items)::INTEGER AS items
FROM {source}
WHERE served_at >= $since AND served_at < $until AND coalesce(user_id, session_id) IS NOT NULL
"""
USERS = """
CREATE OR REPLACE TEMP TABLE users AS
SELECT unit, min(ts) AS first, (row_number() OVER (ORDER BY unit) - 1)::INTEGER AS uid
FROM exposed WHERE version = $version GROUP BY unit
"""
XP = """
CREATE OR REPLACE TEMP TABLE xp AS
SELECT u.uid, e.ts, e.list_id, e.items, true AS post
FROM exposed e JOIN users u ON u.unit = e.unit WHERE e.version = $version
"""


@dataclass(frozen=True)
class VersionFigures:
    """One version's exposures and what followed them."""

    lists: int
    items: int
    users: int
    clicks: float
    converted: int

    @property
    def click_through(self) -> float | None:
        return self.clicks / self.items if self.items else None

    @property
    def conversion(self) -> float | None:
        return self.converted / self.users if self.users else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "lists": self.lists,
            "items": self.items,
            "users": self.users,
            "clicks": self.clicks,
            "converted": self.converted,
            "click_through": self.click_through,
            "conversion": self.conversion,
        }


def _measure(settings: Settings, name: str) -> attribution.EventMeasure:
    spec: MetricSpec = settings.experiments.metrics.get(name) or default_metrics()[name]
    return attribution.EventMeasure(
        tuple(spec.numerator.events), spec.numerator.aggregate, spec.window_hours
    )


def online_by_version(
    settings: Settings,
    events: Source | SourceFactory,
    exposures: Source | SourceFactory,
    *,
    since: datetime,
    until: datetime,
    memory_mb: int = MEMORY_MB,
) -> dict[str, VersionFigures]:
    """Each version's figures for the lists served in ``[since, until)`` and the events up
    to ``until`` (aware datetimes). Empty when nothing was served."""
    clicks, conversion = _measure(settings, "click_through"), _measure(settings, "conversion")
    with tempfile.TemporaryDirectory(prefix="tastebud-online-") as spill:
        connection = sources.connect(spill, memory_mb)
        try:
            exposure_sql = sources.register(
                connection,
                "exposure_source",
                sources.resolve(exposures, since, until),
                schema=EXPOSURE_SCHEMA,
                once=True,
            )
            bounds = {"since": since, "until": until}
            connection.execute(EXPOSED.format(source=exposure_sql), bounds)
            served = connection.execute(
                "SELECT version, count(*), coalesce(sum(items), 0), count(DISTINCT unit) "
                "FROM exposed GROUP BY version ORDER BY version"
            ).fetchall()
            if not served:
                return {}
            # The events once, into a table every version's pass reads (a stream reads once).
            event_sql = sources.register(
                connection,
                "event_source",
                sources.resolve(events, since, until),
                schema=EVENT_SCHEMA,
                once=True,
            )
            connection.execute(
                f"CREATE TEMP TABLE recent_events AS SELECT * FROM {event_sql} "
                'WHERE "timestamp" >= $since AND "timestamp" < $until',
                bounds,
            )
            return {
                str(row[0]): _version(connection, row, clicks, conversion, since, until)
                for row in served
            }
        finally:
            connection.close()


def _version(
    connection: duckdb.DuckDBPyConnection,
    served: tuple[str, int, int, int],
    clicks: attribution.EventMeasure,
    conversion: attribution.EventMeasure,
    since: datetime,
    until: datetime,
) -> VersionFigures:
    """One version's pass: its users and lists as the attribution's ``users`` and ``xp``."""
    version, lists, items, users = served
    connection.execute(USERS, {"version": version})
    connection.execute(XP, {"version": version})
    measured = attribution.event_measures(
        connection,
        "recent_events",
        [clicks, conversion],
        users=int(users),
        since=since,
        until=until,
        pre_us=0,
    )
    return VersionFigures(
        lists=int(lists),
        items=int(items),
        users=int(users),
        clicks=float(measured[clicks][0].sum()),
        converted=int(np.count_nonzero(measured[conversion][0])),
    )


CLICK_THROUGH = metrics.gauge(
    "model",
    "online_click_through",
    "ratio",
    "Clicks attributed to a model version's lists per item shown, over the recent window "
    "([monitoring] online_hours), as the latest monitor run measured it.",
    ["model_version"],
)
CONVERSION = metrics.gauge(
    "model",
    "online_conversion",
    "ratio",
    "Share of the users shown a model version's lists with a purchase or like after, over "
    "the recent window, as the latest monitor run measured it.",
    ["model_version"],
)


def online_check(
    stores: Stores, settings: Settings, production: str, as_of: datetime
) -> MonitorCheck:
    """The ``online`` check: every version's figures over the recent window (details, and
    the gauges above), production's as its metrics. Reported, never a trigger; with no
    exposure in the window it cannot run (``waiting``: it clears once lists are served)."""
    hours = settings.monitoring.online_hours
    since = as_of - timedelta(hours=hours)
    log = open_exposure_log(settings, stores.database)
    try:
        figures = online_by_version(
            settings,
            lambda start, end: sources.events_reader(stores.events, start, end),
            log.scan,
            since=since,
            until=as_of,
        )
    finally:
        log.close()
    if not figures:
        return MonitorCheck(
            "online",
            "error",
            f"could not run: no exposures in the {hours:g} h before {as_of.isoformat()} "
            "(no list served, or [experiments] exposures is off)",
            details={"waiting": True},
        )
    for version, found in figures.items():
        for gauge, value in ((CLICK_THROUGH, found.click_through), (CONVERSION, found.conversion)):
            if value is not None:
                gauge.labels(version).set(value)
    mine = figures.get(production)
    values: dict[str, float | None] = {
        "online.click_through": mine.click_through if mine else None,
        "online.conversion": mine.conversion if mine else None,
        "online.items": float(mine.items) if mine else 0.0,
        "online.users": float(mine.users) if mine else 0.0,
    }
    shown = ", ".join(
        f"{version}: CTR {_share(found.click_through)}, conversion {_share(found.conversion)}"
        for version, found in figures.items()
    )
    return MonitorCheck(
        "online",
        "pass",
        f"the last {hours:g} h of exposures, per model version: {shown}",
        values,
        {"hours": hours, "since": since.isoformat(), "versions": {
            version: found.as_dict() for version, found in figures.items()
        }},
    )  # fmt: skip


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"
