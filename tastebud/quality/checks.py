"""The checks, each from the scan's aggregates to a ``CheckResult`` (docs/quality.md).

Every check measures metrics and lets the rules judge them (``Rules.judge``); what cannot be
measured is an ``error`` with the reason, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from tastebud.config import QualitySettings
from tastebud.quality import stats
from tastebud.quality.results import CheckResult
from tastebud.quality.rules import Rules, worst
from tastebud.quality.scan import HOUR_US, Scan, from_micros, micros
from tastebud.quality.schema import SchemaTally
from tastebud.quality.stats import SessionHours

if TYPE_CHECKING:
    import pyarrow as pa


MINUTE_US = 60_000_000
FIELDS = {"session": "with_session", "device": "with_device", "locale": "with_locale"}


@dataclass(frozen=True)
class Inputs:
    """What every check reads: the judged scan, the rules and the moment judged."""

    settings: QualitySettings
    rules: Rules
    as_of: datetime
    scan: Scan


def judged(
    inputs: Inputs, check: str, metrics: dict[str, float | None], message: str, **details: Any
) -> CheckResult:
    """A result whose status is the worst of its metrics' (no metric: pass)."""
    statuses = {name: inputs.rules.judge(name, value) for name, value in metrics.items()}
    return CheckResult(
        check=check,
        status=worst(list(statuses.values())),
        message=message,
        metrics=metrics,
        statuses=statuses,
        details=details,
        critical=check in inputs.settings.critical,
    )


def failed_to_run(inputs: Inputs | QualitySettings, check: str, reason: str) -> CheckResult:
    settings = inputs.settings if isinstance(inputs, Inputs) else inputs
    return CheckResult(
        check, "error", f"could not run: {reason}", critical=check in settings.critical
    )


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()  # type: ignore[no-any-return]


def check_schema(inputs: Inputs, tally: SchemaTally) -> CheckResult:
    if tally.rows == 0:
        return failed_to_run(inputs, "schema", "no events in the window")
    share = tally.invalid_share
    failures = tally.details()
    message = (
        f"{tally.rows} events in the window, none breaks the contract"
        if not failures
        else f"{sum(tally.failures.values())} failing values in {tally.rows} events: "
        + "; ".join(f"{f['column']} {f['check']} ({f['count']})" for f in failures[:3])
    )
    return judged(inputs, "schema", {"schema.invalid_share": share}, message, failures=failures)


def check_freshness(inputs: Inputs) -> CheckResult:
    """Per source: the age of its newest event against what the source's own history
    allows: ``freshness_max_lag_minutes``, or longer, the time back from now in which the
    same clock hours of the previous days brought ``freshness_expected_users`` users of
    that source. Users, not events: events arrive in bursts (a session), users one by one.
    So a rare source, or any source at night, must be silent for longer to be stale."""
    settings, as_of_us = inputs.settings, micros(inputs.as_of)
    lookback_us = int(settings.freshness_lookback_hours * 3600e6)
    since_hour = (as_of_us - lookback_us) // HOUR_US
    rows = [row for row in _rows(inputs.scan.groups) if row["hour"] >= since_hour]
    if not rows:
        hours = settings.freshness_lookback_hours
        return failed_to_run(inputs, "freshness", f"no events in the last {hours:g} hours")
    newest: dict[tuple[str, str], int] = {}
    for row in rows:
        for dimension in settings.freshness_sources:
            if row[dimension] is not None:
                key = (dimension, row[dimension])
                newest[key] = max(newest.get(key, 0), row["newest"])
    users: dict[tuple[str, str], dict[int, int]] = {}
    for row in _rows(inputs.scan.sources):
        if row["hour"] >= since_hour:
            users.setdefault((row["dimension"], row["value"]), {})[row["hour"]] = row["users"]
    first_hour = min(row["hour"] for row in rows)
    report = []
    for key, last in sorted(newest.items()):
        allowed = allowed_minutes(users.get(key, {}), as_of_us, first_hour, settings)
        lag = max(0.0, (as_of_us - last) / MINUTE_US)
        report.append(
            {
                "source": f"{key[0]}={key[1]}",
                "newest": from_micros(last).isoformat(),
                "lag_minutes": round(lag, 1),
                "allowed_minutes": round(allowed, 1),
                "lag_ratio": round(lag / allowed, 3),
            }
        )
    report.sort(key=lambda entry: -entry["lag_ratio"])
    stalest = report[0]
    message = (
        f"stalest source {stalest['source']}: newest event {stalest['lag_minutes']:g} min "
        f"old (allowed {stalest['allowed_minutes']:g})"
    )
    return judged(
        inputs, "freshness", {"freshness.lag_ratio": stalest["lag_ratio"]}, message, sources=report
    )


def allowed_minutes(
    hourly_users: dict[int, int], as_of_us: int, first_hour: int, settings: QualitySettings
) -> float:
    """How far back from ``as_of`` the previous days' same hours held the expected number
    of users (at least the configured lag; at most the lookback)."""
    days = max(1, min(int(settings.freshness_lookback_hours // 24), 60))

    def rate(hour: int) -> float:  # mean users in this clock hour on the previous days
        seen = [hourly_users.get(hour - 24 * d, 0) for d in range(1, days + 1)]
        known = [
            value
            for hour_back, value in zip(range(1, days + 1), seen, strict=True)
            if hour - 24 * hour_back >= first_hour
        ]
        return sum(known) / len(known) if known else 0.0

    needed, minutes, moment = settings.freshness_expected_users, 0.0, as_of_us
    limit = settings.freshness_lookback_hours * 60
    while needed > 0 and minutes < limit:
        hour = (moment - 1) // HOUR_US
        span = (moment - hour * HOUR_US) / MINUTE_US  # minutes of this hour before moment
        expected = rate(hour) * span / 60
        if expected >= needed:
            minutes += needed / rate(hour) * 60
            needed = 0.0
        else:
            minutes += span
            needed -= expected
        moment = hour * HOUR_US
    return max(settings.freshness_max_lag_minutes, min(minutes, limit))


def check_completeness(
    inputs: Inputs, known_items: Callable[[list[str]], set[str]] | None
) -> CheckResult:
    """Shares of events with a session, device, locale and a catalog item, now and over the
    baseline days before (the drop is what is judged by default: a store that never had
    sessions is not incomplete, one that stopped receiving them is)."""
    window_hour = inputs.scan.bounds.window // HOUR_US
    sums = {period: dict.fromkeys(("n", *FIELDS.values()), 0) for period in ("now", "before")}
    for row in _rows(inputs.scan.groups):
        if row["hour"] * HOUR_US < inputs.scan.bounds.baseline:
            continue
        period = sums["now" if row["hour"] >= window_hour else "before"]
        for key in period:
            period[key] += row[key]
    if sums["now"]["n"] == 0:
        return failed_to_run(inputs, "completeness", "no events in the window")
    shares = {
        period: {name: values[column] / values["n"] for name, column in FIELDS.items()}
        for period, values in sums.items()
        if values["n"]
    }
    notes = []
    if known_items is not None:
        items = _rows(inputs.scan.items)
        known = known_items([row["item_id"] for row in items])
        for period, column in (("now", "window_n"), ("before", "baseline_n")):
            total = sum(row[column] for row in items)
            if total and period in shares:
                hits = sum(row[column] for row in items if row["item_id"] in known)
                shares[period]["known_item"] = hits / total
    else:
        notes.append("the catalog is empty: known items not judged")
    metrics: dict[str, float | None] = {
        f"completeness.{name}": round(value, 6) for name, value in shares["now"].items()
    }
    for name, value in shares.get("before", {}).items():
        metrics[f"completeness.{name}_drop"] = round(max(0.0, value - shares["now"][name]), 6)
    lowest = min(shares["now"], key=shares["now"].__getitem__)
    message = f"lowest share: {lowest} {shares['now'][lowest]:.1%} of events"
    return judged(inputs, "completeness", metrics, message, shares=shares, notes=notes)


def hourly_counts(scan: Scan) -> dict[int, int]:
    counts: dict[int, int] = {}
    for row in _rows(scan.groups):
        counts[row["hour"]] = counts.get(row["hour"], 0) + row["n"]
    return counts


def hour_history(
    counts: dict[int, int], inputs: Inputs
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The window's full hours that have ``volume_min_days`` previous days in the store,
    their counts on those days (days x hours; days before the store's first hour left out)
    and their counts now."""
    settings = inputs.settings
    first_hour, last_full = min(counts), micros(inputs.as_of) // HOUR_US - 1
    days = settings.volume_baseline_days
    hours = [
        hour
        for hour in range(-(-inputs.scan.bounds.window // HOUR_US), last_full + 1)
        if sum(hour - 24 * day >= first_hour for day in range(1, days + 1))
        >= settings.volume_min_days
    ]
    known = min(days, (hours[0] - first_hour) // 24) if hours else 0
    history = np.array(
        [[counts.get(hour - 24 * day, 0) for hour in hours] for day in range(1, known + 1)],
        dtype=np.float64,
    ).reshape(known, len(hours))
    current = np.array([counts.get(hour, 0) for hour in hours], dtype=np.float64)
    return hours, history, current


def session_hours(scan: Scan, hours: list[int], known: int) -> tuple[SessionHours, SessionHours]:
    """The sessions of the judged hours now and on the ``known`` previous days (days x hours)."""
    rows = {row["hour"]: row for row in _rows(scan.sessions)}

    def column(name: str, shift: int) -> np.ndarray:
        return np.array([rows[h][name] if h in rows else 0 for h in np.array(hours) - shift])

    def hours_of(shifts: list[int]) -> SessionHours:
        fields = ("sessions", "events", "squares")
        arrays = [
            np.array([column(name, shift) for shift in shifts], dtype=np.float64) for name in fields
        ]
        return SessionHours(*(a.reshape(len(shifts), len(hours)) for a in arrays))

    now = hours_of([0])
    current = SessionHours(now.sessions[0], now.events[0], now.squares[0])
    return current, hours_of([24 * day for day in range(1, known + 1)])


def volume_anomaly(
    hour: int, count: float, expected: float, p_value: float, test: str
) -> dict[str, Any]:
    return {
        "hour": from_micros(int(hour) * HOUR_US).isoformat(),
        "test": test,
        "events": int(count),
        "expected": round(expected, 1),
        "ratio": round(count / expected if expected else math.inf, 3),
        "p_value": p_value,
    }


def volume_anomalies(
    inputs: Inputs, counts: dict[int, int]
) -> tuple[list[dict[str, Any]], dict[str, Any]] | str:
    """The anomalous hours (both tests of docs/quality.md) and the fit's details, or why no
    hour can be judged."""
    settings = inputs.settings
    hours, history, current = hour_history(counts, inputs)
    profile, _, spread = stats.seasonal_fit(history) if len(history) else (np.zeros(0), None, 1.0)
    judge = profile >= settings.volume_min_events
    if not judge.any():
        return (
            f"no hour of the window has {settings.volume_min_days}+ previous days of history "
            f"with a median of {settings.volume_min_events:g}+ events"
        )
    level = float(np.median(current[judge] / profile[judge]))
    sessions_now, sessions_past = session_hours(inputs.scan, hours, len(history))
    ratio, z = stats.per_session_z(sessions_now, sessions_past)
    usable = sessions_now.sessions >= settings.volume_min_sessions
    anomalies = []
    for index in np.flatnonzero(judge):
        expected = profile[index] * level
        low, high = stats.count_tails(int(current[index]), expected, spread)
        if min(low, high) < settings.volume_alpha:
            entry = volume_anomaly(hours[index], current[index], expected, min(low, high), "count")
            anomalies.append(entry)
        elif usable[index] and np.isfinite(z[index]):
            p_value = stats.normal_tail(float(z[index]))
            if p_value < settings.volume_alpha:
                base = current[index] / ratio[index]
                entry = volume_anomaly(hours[index], current[index], base, p_value, "per_session")
                anomalies.append(entry)
    details = {"hours": int(judge.sum()), "level": round(level, 3), "dispersion": round(spread, 2)}
    return anomalies, details


def check_volume(inputs: Inputs) -> CheckResult:
    """Each full hour of the window against the same hour on the previous days, two ways
    (docs/quality.md): its event count against their median scaled by the window's level
    (the median ratio of its hours to those medians, which one odd hour cannot move: growth
    and weekdays are not anomalies), improbable (``volume_alpha``) given how much hourly
    counts vary around that fit; and its events per session against theirs (a partial loss
    or duplication keeps the sessions and changes their size, and is seen through the
    bursts of sessions that make hourly counts vary 10x more than Poisson)."""
    counts = hourly_counts(inputs.scan)
    if not counts:
        return failed_to_run(inputs, "volume", "no events in the window or the days before")
    found = volume_anomalies(inputs, counts)
    if isinstance(found, str):
        return failed_to_run(inputs, "volume", found)
    anomalies, details = found
    drops = [1.0 - a["ratio"] for a in anomalies if a["ratio"] < 1.0]
    spikes = [a["ratio"] for a in anomalies if a["ratio"] > 1.0]
    drop, spike = max(drops, default=0.0), max(spikes, default=1.0)
    per_session = sum(1 for a in anomalies if a["test"] == "per_session")
    metrics: dict[str, float | None] = {
        "volume.drop": round(drop, 4),
        "volume.spike": round(spike, 4),
    }
    message = (
        f"{details.pop('hours')} hours judged, {len(anomalies)} anomalous, {per_session} by "
        f"events per session (largest drop {drop:.0%}, largest spike x{spike:.2f})"
    )
    anomalies.sort(key=lambda entry: entry["p_value"])
    return judged(inputs, "volume", metrics, message, anomalies=anomalies[:24], **details)
