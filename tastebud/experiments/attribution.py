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

# Each event is cut down to numbers before the joins' sorts and hash tables see it: a bit
# per measure type set (``kinds``) for its type, a 64-bit hash for its session, and the pre
# flag. Only events that need the time window go through the ASOF join (``asof_uid``).
EVENTS = """
WITH ev AS (
    SELECT user_id, epoch_us("timestamp") AS ts, value, {kinds} AS kinds,
           CASE WHEN session_id IS NOT NULL THEN hash(session_id) END AS session,
           json_extract_string(context, '$.list_id') AS list_id
    FROM {source}
    WHERE "timestamp" >= $since AND "timestamp" < $until {types}
), joined AS (
    SELECT ev.ts, ev.value, ev.kinds, ev.session, l.uid AS luid, u.uid AS euid,
           CASE WHEN ev.list_id IS NULL AND ev.ts >= u.first THEN u.uid END AS asof_uid,
           ev.ts >= u.first - $pre AND ev.ts < u.first AS pre
    FROM ev LEFT JOIN users u ON u.unit = ev.user_id
    LEFT JOIN exposed_lists l ON l.list_id = ev.list_id
    WHERE l.uid IS NOT NULL OR (ev.list_id IS NULL AND ev.ts >= u.first)
       OR (ev.ts >= u.first - $pre AND ev.ts < u.first)
), timed AS (
    SELECT j.*, j.ts - x.ts AS since_exposure
    FROM joined j ASOF LEFT JOIN exposed_times x ON x.uid = j.asof_uid AND j.ts >= x.ts
), classed AS (
    SELECT CASE WHEN luid IS NOT NULL THEN luid
                WHEN since_exposure IS NOT NULL THEN euid
                WHEN pre THEN euid END AS uid,
           luid IS NOT NULL OR since_exposure IS NOT NULL AS post,
           CASE WHEN luid IS NOT NULL THEN 0 ELSE since_exposure END AS gap,
           kinds, value, ts, session
    FROM timed
), sessions AS (
    SELECT uid, session, {per_session}
    FROM classed WHERE uid IS NOT NULL GROUP BY uid, session
)
SELECT uid, {per_user} FROM sessions GROUP BY uid
"""
MAX_TYPE_SETS = 63


@dataclass(frozen=True)
class EventMeasure:
    """One events measure of one metric (its window decides what counts after exposure)."""

    types: tuple[str, ...]
    aggregate: str
    window_hours: float


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kinds(type_sets: list[tuple[str, ...]]) -> str:
    """SQL setting bit i of an event when its type is in type set i (empty: every type)."""
    if len(type_sets) > MAX_TYPE_SETS:
        raise ValueError(f"at most {MAX_TYPE_SETS} distinct event type lists in the metrics")
    terms = []
    for bit, types in enumerate(type_sets):
        if types:
            listed = ", ".join(_literal(t) for t in types)
            terms.append(f"CASE WHEN event_type IN ({listed}) THEN {1 << bit} ELSE 0 END")
        else:
            terms.append(str(1 << bit))
    return "(" + " | ".join(f"{term}::UBIGINT" for term in terms) + ")"


def _conditions(measure: EventMeasure, bit: int) -> tuple[str, str]:
    """SQL for "counts after exposure" and "counts in the pre-period"."""
    kind = f"(kinds & {1 << bit}::UBIGINT) <> 0"
    window = int(measure.window_hours * HOUR_US)
    return f"post AND gap <= {window} AND {kind}", f"NOT post AND {kind}"


def _aggregates(measure: EventMeasure, name: str, bit: int) -> tuple[list[str], list[str]]:
    """Per (user, session) and per user SQL for one measure, post and pre."""
    session_sql: list[str] = []
    user_sql: list[str] = []
    for period, condition in zip(("", "pre_"), _conditions(measure, bit), strict=True):
        column = f"{period}{name}"
        if measure.aggregate in ("count", "value"):
            value = "count(*)" if measure.aggregate == "count" else "sum(value)"
            session_sql.append(f"{value} FILTER ({condition}) AS {column}")
            user_sql.append(f"coalesce(sum({column}), 0)::DOUBLE AS {column}")
            continue
        session_sql.append(f"min(ts) FILTER ({condition}) AS {column}_lo")
        session_sql.append(f"max(ts) FILTER ({condition}) AS {column}_hi")
        if measure.aggregate == "sessions":
            total = f"count({column}_lo) FILTER (session IS NOT NULL)"
        else:
            total = f"sum({column}_hi - {column}_lo) FILTER (session IS NOT NULL) / 1e6"
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
    type_sets = list(dict.fromkeys(measure.types for measure in measures))
    for index, measure in enumerate(measures):
        bit = type_sets.index(measure.types)
        session_sql, user_sql = _aggregates(measure, f"m{index}", bit)
        per_session += session_sql
        per_user += user_sql
    types = ""
    if all(measure.types for measure in measures):
        wanted = sorted({t for measure in measures for t in measure.types})
        types = f"AND event_type IN ({', '.join(_literal(t) for t in wanted)})"
    sql = EVENTS.format(
        kinds=_kinds(type_sets),
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
