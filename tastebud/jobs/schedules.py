"""When jobs run: cron expressions (croniter), fixed intervals, or only on demand.

A schedule turns "now" into data intervals: the interval ending at the latest tick is the
one a scheduled run covers, so ``[start, end)`` is always complete (its events have
arrived) and the same tick always yields the same interval, which keeps runs idempotent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Schedule(ABC):
    @abstractmethod
    def previous(self, moment: datetime) -> datetime | None:
        """The latest tick at or before ``moment`` (None: never runs by itself)."""

    @abstractmethod
    def next(self, moment: datetime) -> datetime | None:
        """The first tick strictly after ``moment``."""

    @abstractmethod
    def describe(self) -> str: ...

    def interval_ending(self, end: datetime) -> tuple[datetime, datetime]:
        """The data interval a run at tick ``end`` covers: from the tick before it."""
        start = self.previous(end - timedelta(microseconds=1))
        if start is None:
            raise ValueError(f"{self.describe()} has no tick before {end.isoformat()}")
        return start, end

    def latest_interval(self, now: datetime) -> tuple[datetime, datetime]:
        """The newest complete interval at ``now``."""
        end = self.previous(now)
        if end is None:
            raise ValueError(f"{self.describe()} jobs run only with an explicit interval")
        return self.interval_ending(end)

    def ticks_between(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Ticks in (after, until], oldest first, at most ``limit`` (the newest ones)."""
        ticks: list[datetime] = []
        tick = self.next(after)
        while tick is not None and tick <= until:
            ticks.append(tick)
            if len(ticks) > limit:
                ticks.pop(0)
            tick = self.next(tick)
        return ticks


@dataclass(frozen=True)
class Cron(Schedule):
    """A five-field cron expression, evaluated in UTC."""

    expression: str

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.expression):
            raise ValueError(f"invalid cron expression {self.expression!r}")

    def previous(self, moment: datetime) -> datetime:
        # croniter's get_prev is strict; step a microsecond past so a tick matches itself.
        return croniter(self.expression, moment + timedelta(microseconds=1)).get_prev(datetime)

    def next(self, moment: datetime) -> datetime:
        return croniter(self.expression, moment).get_next(datetime)

    def describe(self) -> str:
        return f"cron {self.expression}"


@dataclass(frozen=True)
class Every(Schedule):
    """A fixed interval aligned to the Unix epoch (every 5 minutes: :00, :05, ...)."""

    period: timedelta

    def __post_init__(self) -> None:
        if self.period <= timedelta(0):
            raise ValueError("an interval schedule needs a positive period")

    def previous(self, moment: datetime) -> datetime:
        return EPOCH + ((moment - EPOCH) // self.period) * self.period

    def next(self, moment: datetime) -> datetime:
        return self.previous(moment) + self.period

    def describe(self) -> str:
        seconds = int(self.period.total_seconds())
        for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
            if seconds % size == 0:
                return f"every {seconds // size}{unit}"
        return f"every {seconds}s"


@dataclass(frozen=True)
class OnDemand(Schedule):
    """Runs only when asked, over the interval it is given (backfills)."""

    def previous(self, moment: datetime) -> None:
        return None

    def next(self, moment: datetime) -> None:
        return None

    def describe(self) -> str:
        return "on demand"


def parse_schedule(text: str) -> Schedule:
    """``"*/5 * * * *"`` (cron), ``"5m"`` / ``"1h"`` / ``"1d"`` (interval) or ``"manual"``."""
    text = text.strip()
    if text in ("manual", "on demand", "on-demand"):
        return OnDemand()
    units = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
    if text[:-1].isdigit() and text[-1:] in units:
        return Every(timedelta(seconds=int(text[:-1]) * units[text[-1]]))
    return Cron(text)
