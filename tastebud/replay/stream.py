"""A recorded event log, sent again in time order at a chosen speed and arrival pattern.

The events are read with the ingest loaders and validated as ``tastebud ingest`` would
(rejected rows are reported with their line, never sent), ordered by time (stable, so ties
keep file order), then shifted so that the data ends when the replay does: with the
recorded pattern each event is stamped no later than the moment it is sent, so at speed 1
the stream is indistinguishable from live traffic. Pacing is a schedule of due times over
numpy; a replay that falls behind sends what is due in bounded batches and reports its lag.

Hand-written: no library replays a log against tastebud's event schema and gateway, and
the pacing is a few lines.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.schemas import arrow_schemas
from tastebud.validation import Rejection, validate_event_table

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.loaders import Source

PATTERNS = ("recorded", "uniform", "poisson")
MAX_REPORTED_REJECTIONS = 50

# progress(events_sent, events_total)
Progress = Callable[[int, int], None]


class ReplayError(ValueError):
    """A replay that cannot start: bad options or nothing to send."""


@dataclass(frozen=True)
class ReplayPlan:
    """How to pace and stamp a replay.

    ``speed``: seconds of recorded time per second of replay (3600: an hour a second; 1: real
    time; 0: as fast as the target takes them). ``pattern``: ``recorded`` keeps the data's
    own gaps (divided by ``speed``), ``uniform`` and ``poisson`` send ``rate`` events per
    second evenly or with exponential gaps. ``start``/``end`` select recorded times
    [start, end). ``ends_at`` pins the shifted data's last moment (default: the end of the
    replay for ``recorded``, its start otherwise)."""

    speed: float = 3600.0
    pattern: str = "recorded"
    rate: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    ends_at: datetime | None = None
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ReplayError(f"--rate-pattern must be one of {', '.join(PATTERNS)}")
        if not np.isfinite(self.speed) or (self.speed != 0 and self.speed < 1):
            raise ReplayError(
                "--speed must be 0 (as fast as possible) or at least 1 (a slower replay would "
                "stamp events in the future)"
            )
        if self.pattern == "recorded" and self.rate is not None:
            raise ReplayError("--rate applies to --rate-pattern uniform or poisson")
        if self.pattern != "recorded" and (
            self.rate is None or not np.isfinite(self.rate) or self.rate <= 0
        ):
            raise ReplayError(f"--rate-pattern {self.pattern} needs --rate > 0 (events/second)")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ReplayError("--from must be before --to")
        if not 1 <= self.batch_size <= 10_000:
            raise ReplayError("--batch-size must be between 1 and 10000")


@dataclass
class LoadedEvents:
    """The valid events in time order, and what was refused on the way."""

    table: pa.Table
    rows_read: int = 0
    rejected: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)  # the first ones
    outside_window: int = 0

    def reject(self, rejections: Iterable[Rejection]) -> None:
        for rejection in rejections:
            self.rejected += 1
            self.by_reason[rejection.reason] += 1
            if len(self.rejections) < MAX_REPORTED_REJECTIONS:
                self.rejections.append(rejection)


@dataclass
class ReplayReport:
    """What a replay sent and what its target answered."""

    total: int
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    max_lag_seconds: float = 0.0
    first_time: datetime | None = None  # recorded (unshifted) times of what was sent
    last_time: datetime | None = None
    shift_seconds: float = 0.0
    paced: bool = True  # False at --speed 0: everything is due at once, lag means nothing

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.by_reason.most_common()),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.sent / self.seconds, 1) if self.seconds else None,
            "max_lag_seconds": round(self.max_lag_seconds, 3) if self.paced else None,
            "recorded_from": self.first_time.isoformat() if self.first_time else None,
            "recorded_to": self.last_time.isoformat() if self.last_time else None,
            "shift_seconds": round(self.shift_seconds, 3),
        }


class TargetFailed(RuntimeError):
    """The gateway or the store could not take a batch (unreachable, key refused, down)."""


class ReplayInterrupted(RuntimeError):
    """The target failed (or the user stopped) mid-way: ``report`` says what was sent, and
    ``resume_from`` the recorded time to pass as ``--from`` to send the rest."""

    def __init__(self, report: ReplayReport, resume_from: datetime | None, cause: str) -> None:
        super().__init__(cause)
        self.report = report
        self.resume_from = resume_from
        self.cause = cause


@dataclass
class Outcome:
    """One batch's answer from a target."""

    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class Target(Protocol):
    def send(self, events: pa.Table) -> Outcome:
        """Store a batch of events (EVENT_SCHEMA, shifted times); raise ``TargetFailed``."""
        ...

    def send_catalog(self, source: Source, settings: Settings) -> Outcome:
        """Upsert a source of items or users; rejected rows are counted by reason."""
        ...


def load_events(sources: Iterable[Source], settings: Settings, plan: ReplayPlan) -> LoadedEvents:
    """Read and validate every events source, keep ``plan``'s window, order by time."""
    schema = arrow_schemas()["EVENT_SCHEMA"]
    loaded = LoadedEvents(schema.empty_table())
    tables = []
    for source in sources:
        if source.kind != "events":
            continue
        for batch in source.read(settings.ingest.batch_size):
            loaded.rows_read += batch.rows_read
            refused = list(batch.rejections)  # the reader's, then validation's: by line
            if batch.table.num_rows:
                validated = validate_event_table(batch.table, settings.events, batch.row_numbers)
                refused += validated.rejections
                tables.append(validated.table)
            loaded.reject(sorted(refused, key=lambda rejection: rejection.row))
    if not tables:
        return loaded
    table = pa.concat_tables(tables)
    keep = None
    stamp = table.column("timestamp")
    if plan.start is not None:
        keep = pc.greater_equal(stamp, pa.scalar(plan.start, stamp.type))
    if plan.end is not None:
        before = pc.less(stamp, pa.scalar(plan.end, stamp.type))
        keep = before if keep is None else pc.and_(keep, before)
    if keep is not None:
        kept = table.filter(keep)
        loaded.outside_window = table.num_rows - kept.num_rows
        table = kept
    # Arrow's sort is stable: events at one moment keep their order in the file.
    loaded.table = table.take(pc.sort_indices(table, [("timestamp", "ascending")]))
    return loaded


def schedule(times_us: np.ndarray, plan: ReplayPlan) -> np.ndarray:
    """Seconds after the replay starts at which each event is due (non-decreasing)."""
    size = len(times_us)
    if size == 0:
        return np.zeros(0)
    if plan.pattern == "recorded":
        if plan.speed == 0:
            return np.zeros(size)
        return (times_us - times_us[0]).astype(np.float64) / 1e6 / plan.speed
    assert plan.rate is not None  # checked by the plan
    if plan.pattern == "uniform":
        return np.arange(size, dtype=np.float64) / plan.rate
    gaps = np.random.default_rng(plan.seed).exponential(1.0 / plan.rate, size)
    gaps[0] = 0.0
    return np.cumsum(gaps)


def _shift_micros(times_us: np.ndarray, due: np.ndarray, started_us: int, plan: ReplayPlan) -> int:
    """What to add to every recorded time so the data ends where the plan says."""
    if plan.ends_at is not None:
        return int(plan.ends_at.timestamp() * 1e6) - int(times_us[-1])
    if plan.pattern == "recorded" and plan.speed > 0:
        # The last event is stamped when it is due; each earlier one no later than its send.
        return started_us + round(due[-1] * 1e6) - int(times_us[-1])
    return started_us - int(times_us[-1])


def _micros(table: pa.Table) -> np.ndarray:
    return table.column("timestamp").cast(pa.int64()).to_numpy().astype(np.int64)


def _moment(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC)


def replay(
    table: pa.Table,
    target: Target,
    plan: ReplayPlan,
    *,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall: Callable[[], float] = time.time,
) -> ReplayReport:
    """Send ``table`` (events in time order) to ``target`` on ``plan``'s schedule.

    Raises ``ReplayInterrupted`` when the target fails or the user interrupts; what was
    acknowledged before that stays stored."""
    times = _micros(table)
    report = ReplayReport(total=table.num_rows)
    report.paced = plan.pattern != "recorded" or plan.speed > 0
    if table.num_rows == 0:
        return report
    due = schedule(times, plan)
    shift = _shift_micros(times, due, int(wall() * 1e6), plan)
    report.shift_seconds = shift / 1e6
    stamp_field = table.schema.field("timestamp")
    shifted = table.set_column(
        table.schema.get_field_index("timestamp"),
        stamp_field,
        pa.array(times + shift, pa.int64()).cast(stamp_field.type),
    )
    started = clock()
    position = 0
    try:
        while position < table.num_rows:
            elapsed = clock() - started
            if due[position] > elapsed:
                sleep(min(due[position] - elapsed, 0.25))
                continue
            stop = int(np.searchsorted(due, elapsed, side="right"))
            stop = max(position + 1, min(stop, position + plan.batch_size))
            outcome = target.send(shifted.slice(position, stop - position))
            report.sent += stop - position
            report.accepted += outcome.accepted
            report.duplicates += outcome.duplicates
            report.rejected += sum(outcome.rejected.values())
            report.by_reason.update(outcome.rejected)
            report.first_time = report.first_time or _moment(int(times[0]))
            report.last_time = _moment(int(times[stop - 1]))
            report.max_lag_seconds = max(report.max_lag_seconds, clock() - started - due[stop - 1])
            position = stop
            if progress is not None:
                progress(position, table.num_rows)
    except KeyboardInterrupt:
        report.seconds = clock() - started
        raise ReplayInterrupted(report, _moment(int(times[position])), "interrupted") from None
    except TargetFailed as error:
        report.seconds = clock() - started
        raise ReplayInterrupted(report, _moment(int(times[position])), str(error)) from error
    report.seconds = clock() - started
    return report
