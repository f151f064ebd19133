"""When a listener may be notified: a frequency cap (at most ``max_per_day`` messages in any
24 hours, at least ``min_gap_hours`` apart) and quiet hours in the device's own time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tastebud.config import PushSettings, check_timezone
from tastebud.stores.push import PushSubscription, SentPush

DAY = 86_400.0


def capped(sent: Sequence[SentPush], now: float, settings: PushSettings) -> str | None:
    """Why the user may not get another message now (None: they may)."""
    recent = [entry for entry in sent if entry.sent_at > now - DAY]
    if len(recent) >= settings.max_per_day:
        return f"{len(recent)} messages in the last 24 h (cap {settings.max_per_day})"
    if recent and now - max(entry.sent_at for entry in recent) < settings.min_gap_hours * 3600:
        return f"the last message was under {settings.min_gap_hours:g} h ago"
    return None


def in_quiet_hours(moment: datetime, timezone: str | None, settings: PushSettings) -> bool:
    """Whether ``moment`` falls in the quiet hours of a device in ``timezone``; a zone this
    machine does not know counts as the default zone (it was checked when subscribing)."""
    start, end = settings.quiet_start_hour, settings.quiet_end_hour
    if start == end:
        return False
    try:
        zone = ZoneInfo(check_timezone(timezone or settings.default_timezone))
    except ValueError:
        zone = ZoneInfo(settings.default_timezone)
    hour = moment.astimezone(zone).hour
    return start <= hour < end if start < end else hour >= start or hour < end


def awake(
    subscriptions: Sequence[PushSubscription], moment: datetime, settings: PushSettings
) -> list[PushSubscription]:
    """The subscriptions whose device is outside its quiet hours."""
    return [s for s in subscriptions if not in_quiet_hours(moment, s.timezone, settings)]


def history_start(now: float, settings: PushSettings) -> float:
    return now - timedelta(days=settings.history_days).total_seconds()
