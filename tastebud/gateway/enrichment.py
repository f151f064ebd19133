"""Enrichment: what the gateway adds to an event the client did not set.

* ``device_type`` from the User-Agent. We need three classes (web, mobile, other), not browser
  versions; the field's parsers (ua-parser, user-agents) carry a large regex database to name
  browsers and devices, which is more than this needs and costs tens of microseconds per call.
  The tokens below are the ones browsers and app HTTP stacks document for "mobile" (MDN advises
  "Mobi" for mobile detection).
* ``locale`` from Accept-Language: the highest-weighted concrete tag (RFC 9110 section 12.5.4).
* ``session_id`` from a per-user inactivity gap (30 minutes by default), with the last-seen
  time per user kept in the online store so every worker sees the same sessions.
* ``received_at``: the server time the request arrived.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import pyarrow as pa

from tastebud.schemas import (
    EVENT_SCHEMA,
    LOCALE_RE,
    DeviceType,
    Event,
    events_from_arrow,
    events_to_arrow,
)
from tastebud.stores import OnlineStore

MOBILE_TOKENS = re.compile(
    r"Mobi|Android|iPhone|iPad|iPod|Windows Phone|BlackBerry|BB10|Opera Mini|IEMobile|"
    r"Kindle|Silk/|webOS|CFNetwork|okhttp|Dalvik|Dart/|Expo/|ReactNative",
    re.IGNORECASE,
)
BOT_TOKENS = re.compile(r"bot\b|crawler|spider|slurp|headless", re.IGNORECASE)
BROWSER_TOKENS = re.compile(r"^Mozilla/\d|^Opera/\d")


@lru_cache(maxsize=4096)
def device_from_user_agent(user_agent: str | None) -> DeviceType | None:
    """``mobile`` for phones, tablets and mobile app HTTP stacks, ``web`` for desktop
    browsers, ``other`` for anything else (scripts, bots, servers); None without a header."""
    if not user_agent or not user_agent.strip():
        return None
    if BOT_TOKENS.search(user_agent):
        return DeviceType.other
    if MOBILE_TOKENS.search(user_agent):
        return DeviceType.mobile
    if BROWSER_TOKENS.search(user_agent):
        return DeviceType.web
    return DeviceType.other


@lru_cache(maxsize=1024)
def locale_from_accept_language(header: str | None, max_length: int = 35) -> str | None:
    """The preferred language tag of an Accept-Language header, or None (absent, ``*`` only,
    or nothing parseable). Ties keep header order."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        weight = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = -1.0
        if (
            tag == "*"
            or weight <= 0
            or len(tag) > max_length
            or not LOCALE_RE.fullmatch(tag)
            or weight > 1
        ):
            continue
        candidate = (-weight, position, tag.replace("_", "-"))
        if best is None or candidate < best:
            best = candidate
    return None if best is None else best[2]


def session_id_for(user_id: str, start: float) -> str:
    """Deterministic: two workers opening the same user's session from the same first event
    name it the same."""
    digest = hashlib.blake2b(f"{user_id}\x1f{start!r}".encode(), digest_size=10).hexdigest()
    return f"s-{digest}"


@dataclass
class _SessionState:
    session_id: str
    last_seen: float


class Sessionizer:
    """Assigns session ids by per-user inactivity gap, on event time.

    An event within ``gap`` seconds of the user's last seen event joins that session (late
    events too, in either direction); a later event past the gap opens a new session; an event
    much older than the last seen one gets a session of its own and leaves the state alone.
    State is one small value per user in the online store (``session_id|last_seen``), with a
    TTL of twice the gap. It is rewritten when a session starts, and otherwise only once
    ``last_seen`` moved by ``resolution`` seconds (1/30 of the gap, so 60 s by default): an
    active user's events then cost a read, not a write, and the gap is judged to within that
    resolution.
    """

    def __init__(self, online: OnlineStore, gap_seconds: float, prefix: str = "gw:session:"):
        self.online = online
        self.gap = gap_seconds
        self.prefix = prefix
        self.resolution = gap_seconds / 30

    def assign(self, events: Sequence[tuple[str, datetime | float]]) -> list[str]:
        """Session ids for (user_id, event time) pairs, in input order; times are datetimes
        or epoch seconds."""
        users = sorted({user for user, _ in events})
        keys = [self.prefix + user for user in users]
        states: dict[str, _SessionState] = {}
        stored: dict[str, _SessionState] = {}
        for user, raw in zip(users, self.online.get_many(keys), strict=True):
            if raw:
                session_id, _, last_seen = raw.decode("utf-8", "replace").rpartition("|")
                with contextlib.suppress(ValueError):  # unreadable state: start afresh
                    if session_id:
                        states[user] = _SessionState(session_id, float(last_seen))
                        stored[user] = _SessionState(session_id, float(last_seen))
        times = [
            moment.timestamp() if isinstance(moment, datetime) else float(moment)
            for _, moment in events
        ]
        order = sorted(range(len(events)), key=times.__getitem__)
        assigned = [""] * len(events)
        changed: set[str] = set()
        for index in order:
            user, seconds = events[index][0], times[index]
            state = states.get(user)
            if state is not None and abs(seconds - state.last_seen) <= self.gap:
                if seconds > state.last_seen:
                    state.last_seen = seconds
                    changed.add(user)
                assigned[index] = state.session_id
            elif state is not None and seconds < state.last_seen:
                assigned[index] = session_id_for(user, seconds)
            else:
                states[user] = _SessionState(session_id_for(user, seconds), seconds)
                assigned[index] = states[user].session_id
                changed.add(user)
        changed = {
            user
            for user in changed
            if user not in stored
            or stored[user].session_id != states[user].session_id
            or states[user].last_seen - stored[user].last_seen >= self.resolution
        }
        if changed:
            self.online.set_many(
                {
                    self.prefix
                    + user: f"{states[user].session_id}|{states[user].last_seen!r}".encode()
                    for user in changed
                },
                ttl_seconds=self.gap * 2,
            )
        return assigned


@dataclass(frozen=True)
class RequestContext:
    """What enrichment reads from the request."""

    user_agent: str | None
    accept_language: str | None
    received_at: datetime


@dataclass
class Enrichment:
    """What enrichment decided for each row (None: keep the event's own value)."""

    session_ids: list[str | None]
    device_type: DeviceType | None
    locale: str | None
    received_at: datetime


def enrichment_for(
    table: pa.Table,
    request: RequestContext,
    sessions: Sessionizer | None,
    max_locale_length: int = 35,
) -> Enrichment:
    """Decide what to fill in for the events of an EVENT_SCHEMA table. ``sessions`` None
    skips sessionization (its store is down)."""
    own_sessions = table.column("session_id").to_pylist()
    session_ids: list[str | None] = [None] * table.num_rows
    need_session = [row for row, own in enumerate(own_sessions) if own is None]
    if sessions is not None and need_session:
        users = table.column("user_id").to_pylist()
        micros = table.column("timestamp").cast(pa.int64()).to_pylist()
        assigned = sessions.assign([(users[row], micros[row] / 1e6) for row in need_session])
        for row, session_id in zip(need_session, assigned, strict=True):
            session_ids[row] = session_id
    return Enrichment(
        session_ids,
        device_from_user_agent(request.user_agent),
        locale_from_accept_language(request.accept_language, max_locale_length),
        request.received_at,
    )


def enriched_table(table: pa.Table, enrichment: Enrichment) -> pa.Table:
    """The table with the enrichment applied column-wise: the client's values always win,
    except ``received_at``, which is always the server's. (A new model per event would cost
    more than the rest of enrichment together.)"""
    device = enrichment.device_type.value if enrichment.device_type is not None else None
    columns = {
        "session_id": [
            own if own is not None else decided
            for own, decided in zip(
                table.column("session_id").to_pylist(), enrichment.session_ids, strict=True
            )
        ],
        "device_type": [
            own if own is not None else device for own in table.column("device_type").to_pylist()
        ],
        "locale": [
            own if own is not None else enrichment.locale
            for own in table.column("locale").to_pylist()
        ],
        "received_at": [enrichment.received_at] * table.num_rows,
    }
    for name, values in columns.items():
        position = EVENT_SCHEMA.get_field_index(name)
        schema_field = EVENT_SCHEMA.field(name)
        table = table.set_column(position, schema_field, pa.array(values, schema_field.type))
    return table


def enrich(
    events: Sequence[Event],
    request: RequestContext,
    sessions: Sessionizer | None,
    max_locale_length: int = 35,
) -> list[Event]:
    """The events with what the client left out filled in, as models."""
    table = events_to_arrow(events)
    decided = enrichment_for(table, request, sessions, max_locale_length)
    return events_from_arrow(enriched_table(table, decided))
