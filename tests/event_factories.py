"""Events for tests, shared by every test folder (import ``event_factories``; importing from
``conftest`` breaks when another folder has its own conftest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tastebud.schemas import Event

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_events(count: int, *, prefix: str = "e", users: int = 5, items: int = 7) -> list[Event]:
    types = ["play", "like", "skip", "view", "purchase"]
    return [
        Event(
            event_id=f"{prefix}{index}",
            user_id=f"u{index % users}",
            item_id=f"i{index % items}",
            event_type=types[index % len(types)],
            value=float(index) if index % 2 else None,
            timestamp=T0 + timedelta(minutes=index),
            session_id=f"s{index // 10}",
            device_type="web" if index % 3 else "mobile",
            locale="en-US",
            context={"page": "home", "n": index} if index % 4 == 0 else {},
        )
        for index in range(count)
    ]
