"""What "now" means for jobs and features: the wall clock for a live store, the newest event
for a historical one.

Jobs and features compute "as of" a moment. On a live store that is the wall clock; on a
store whose data ended in the past (MovieLens, a generated world from last month, a
pipeline stopped for days) the wall clock gives empty windows, 1-item lists and null
features. So a store whose newest event is more than ``jobs.historical_after_hours`` old is
*historical*, and anything run without an explicit time (``jobs run`` without
``--start/--end/--as-of``, ``features materialize`` without ``--end``, ``quickstart``)
runs as of its newest event instead, and says so. The scheduler stays on the wall clock:
it serves live stores, where a silent store is news (its runs are refused, not faked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tastebud.stores import EventQuery, EventStore

ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class DataClock:
    """The moment to run as of, and why."""

    as_of: datetime
    newest_event: datetime | None
    historical: bool
    given: bool = False

    def describe(self) -> str:
        if self.given:
            return f"as of {self.as_of.isoformat()} (given)"
        if self.historical:
            assert self.newest_event is not None
            return (
                f"the store is historical (newest event {self.newest_event.isoformat()}): "
                f"running as of that event, not the wall clock; pass --as-of to choose"
            )
        return f"as of now ({self.as_of.isoformat()})"


def newest_event(events: EventStore) -> datetime | None:
    """The time of the newest stored event (None for an empty store)."""
    newest = events.read_arrow(EventQuery(order="desc", limit=1))
    if newest.num_rows == 0:
        return None
    moment: datetime = newest.column("timestamp")[0].as_py()
    return moment.astimezone(UTC)


def data_clock(
    events: EventStore,
    *,
    historical_after: timedelta,
    as_of: datetime | None = None,
    now: datetime | None = None,
    max_ahead: timedelta | None = None,
) -> DataClock:
    """``as_of`` when given; else the wall clock, unless the newest event is older than
    ``historical_after``: then just after that event (so a [start, as_of) window holds it).
    ``max_ahead``: how far past the wall clock ``as_of`` may be (no event can be stamped
    later than ``[events] max_future_seconds`` ahead, so a later moment is a typo whose
    results would be recorded as the newest)."""
    wall = now or datetime.now(UTC)
    if as_of is not None:
        if as_of.tzinfo is None:
            raise ValueError("--as-of must carry a timezone (e.g. 2025-01-01T00:00Z)")
        if max_ahead is not None and as_of > wall + max_ahead:
            raise ValueError(
                f"--as-of {as_of.isoformat()} is in the future: no event can be later than"
                f" {(wall + max_ahead).isoformat(timespec='seconds')} ([events]"
                " max_future_seconds past now)"
            )
        return DataClock(as_of, None, historical=False, given=True)
    newest = newest_event(events)
    if newest is None or wall - newest <= historical_after:
        return DataClock(wall, newest, historical=False)
    return DataClock(newest + ONE_MICROSECOND, newest, historical=True)
