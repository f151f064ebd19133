"""The events side of the metrics: which events count, for whom, in one DuckDB pass.

An event counts for a user after the user's first exposure when

* its ``context.list_id`` names a counted exposure of the experiment: exactly, toward that
  exposure's user, whenever it comes (no window);
* it names no list, and comes at most the metric's ``window_hours`` after one of the user's
  counted exposures (the time-window fallback: the nearest exposure before it, an ASOF join).

An event naming a list outside the experiment does not count after the first exposure. In
the pre-period (the ``pre_period_days`` before the user's first exposure: CUPED's covariate)
every event of the user counts, whatever list it names.

Events are read once (a stream from the event store works as well as Parquet), joined to
the users, the experiment's list ids and its exposure times (tables ``users`` and ``xp``
that ``served`` fills), and reduced per (user, session) then per user, with one filtered
aggregate per measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from tastebud.experiments.sources import READ_ERRORS, SourceError

HOUR_US = 3_600_000_000

EVENTS = """
WITH ev AS (
    SELECT user_id, event_type, value, epoch_us("timestamp") AS ts, session_id,
           json_extract_string(context, '$.list_id') AS list_id
    FROM {source}
    WHERE "timestamp" >= $since AND "timestamp" < $until {types}
), joined AS (
    SELECT ev.*, u.uid AS euid, u.first, l.uid AS luid
    FROM ev LEFT JOIN users u ON u.unit = ev.user_id
    LEFT JOIN exposed_lists l ON l.list_id = ev.list_id
    WHERE u.uid IS NOT NULL OR l.uid IS NOT NULL
), timed AS (
    SELECT j.*, j.ts - x.ts AS since_exposure
    FROM joined j ASOF LEFT JOIN exposed_times x ON x.uid = j.euid AND j.ts >= x.ts
), classed AS (
    SELECT CASE WHEN luid IS NOT NULL THEN luid
                WHEN list_id IS NULL AND since_exposure IS NOT NULL THEN euid
                WHEN ts >= first - $pre AND ts < first THEN euid END AS uid,
           luid IS NOT NULL OR (list_id IS NULL AND since_exposure IS NOT NULL) AS post,
           CASE WHEN luid IS NOT NULL THEN 0 ELSE since_exposure END AS gap,
           event_type, value, ts, session_id
    FROM timed
), sessions AS (
    SELECT uid, session_id, {per_session}
    FROM classed WHERE uid IS NOT NULL GROUP BY uid, session_id
)
SELECT uid, {per_user} FROM sessions GROUP BY uid
"""


@dataclass(frozen=True)
class EventMeasure:
    """One events measure of one metric (its window decides what counts after exposure)."""

    types: tuple[str, ...]
    aggregate: str
    window_hours: float


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _conditions(measure: EventMeasure) -> tuple[str, str]:
    """SQL for "counts after exposure" and "counts in the pre-period"."""
    types = ""
    if measure.types:
        types = f" AND event_type IN ({', '.join(_literal(t) for t in measure.types)})"
    window = int(measure.window_hours * HOUR_US)
    return f"post AND gap <= {window}{types}", f"NOT post{types}"


def _aggregates(measure: EventMeasure, name: str) -> tuple[list[str], list[str]]:
    """Per (user, session) and per user SQL for one measure, post and pre."""
    session_sql: list[str] = []
    user_sql: list[str] = []
    for period, condition in zip(("", "pre_"), _conditions(measure), strict=True):
        column = f"{period}{name}"
        if measure.aggregate in ("count", "value"):
            value = "count(*)" if measure.aggregate == "count" else "sum(value)"
            session_sql.append(f"{value} FILTER ({condition}) AS {column}")
            user_sql.append(f"coalesce(sum({column}), 0)::DOUBLE AS {column}")
            continue
        session_sql.append(f"min(ts) FILTER ({condition}) AS {column}_lo")
        session_sql.append(f"max(ts) FILTER ({condition}) AS {column}_hi")
        if measure.aggregate == "sessions":
            total = f"count({column}_lo) FILTER (session_id IS NOT NULL)"
        else:
            total = f"sum({column}_hi - {column}_lo) FILTER (session_id IS NOT NULL) / 1e6"
        user_sql.append(f"coalesce({total}, 0)::DOUBLE AS {column}")
    return session_sql, user_sql


def event_measures(
    connection: duckdb.DuckDBPyConnection,
    source_sql: str,
    measures: list[EventMeasure],
    *,
    users: int,
    since: datetime,
    until: datetime,
    pre_us: int,
) -> dict[EventMeasure, tuple[np.ndarray, np.ndarray]]:
    """Per measure, (after exposure, pre-period) per user, indexed by uid."""
    if not measures:
        return {}
    connection.execute(
        "CREATE OR REPLACE TEMP VIEW exposed_lists AS SELECT list_id, uid FROM xp WHERE post"
    )
    connection.execute(
        "CREATE OR REPLACE TEMP VIEW exposed_times AS SELECT uid, ts FROM xp WHERE post"
    )
    per_session: list[str] = []
    per_user: list[str] = []
    for index, measure in enumerate(measures):
        session_sql, user_sql = _aggregates(measure, f"m{index}")
        per_session += session_sql
        per_user += user_sql
    types = ""
    if all(measure.types for measure in measures):
        wanted = sorted({t for measure in measures for t in measure.types})
        types = f"AND event_type IN ({', '.join(_literal(t) for t in wanted)})"
    sql = EVENTS.format(
        source=source_sql,
        types=types,
        per_session=", ".join(per_session),
        per_user=", ".join(per_user),
    )
    try:
        result = connection.execute(
            sql, {"since": since, "until": until, "pre": pre_us}
        ).fetchnumpy()
    except READ_ERRORS as error:
        raise SourceError(f"cannot read the events: {error}") from None
    uid = np.asarray(result["uid"])
    out: dict[EventMeasure, tuple[np.ndarray, np.ndarray]] = {}
    for index, measure in enumerate(measures):
        pair = []
        for period in ("", "pre_"):
            array = np.zeros(users)
            array[uid] = np.asarray(result[f"{period}m{index}"], dtype=np.float64)
            pair.append(array)
        out[measure] = (pair[0], pair[1])
    return out
