"""The closed loop: simulated users ask a running gateway for their lists over HTTP, look at
them with position bias and send back what they did (``tastebud simulate``).

Each of ``users`` world users (drawn once, seeded) makes Poisson visits over ``days``
simulated days at their own stable rate (``users.UserModel``), at hours drawn from the
world's daily cycle. A visit is ``GET /v1/users/{id}/recommendations?k=``; every item of the
answer is examined with the position-bias probability and, when examined, clicked by true
utility; a click is followed by a play (seconds), maybe a skip, a like, a purchase
(``UserModel.react``). The events go to ``POST /v1/events`` in batches with
``context.list_id`` from the response (when serving gives one; exact attribution) and the
position, dated in simulated time.

Simulated time starts at ``start`` (default: now) and runs ``speed`` simulated seconds per
real second (0: as fast as the server answers); it orders the visits and paces them.

Dates (``dates``). ``real`` (the default) dates each visit's events when its list came back,
with the seconds between them shrunk by ``speed``: the server's clock, which exposures carry
too, so an experiment's analysis (events after a user's first exposure and before its
``now``; the pre-period before it) sees them where they belong. ``simulated`` dates them in
simulated time: a log with realistic days and hours, which a server running in real time
sees ahead of its clock when ``speed`` > 1 (the gateway takes events up to
``events.max_future_seconds`` ahead, a day by default) and an analysis only counts once that
time has come.

What the loop knows and the analysis does not is the truth: per variant (``experiment/variant``
from the response, or ``-`` for lists served in no experiment) the mean true utility of the items
served per user and the click-through the model expects, beside what was observed
(``LoopSummary``), for the integrator to hold the analysis against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
import numpy as np

from tastebud.client import RETRY_STATUSES, GatewayError, TastebudClient
from tastebud.data.synthetic_world import DEVICES
from tastebud.simulation.users import MICROS_PER_SECOND, UserModel, micros

NO_VARIANT = "-"
REQUEST_ATTEMPTS = 5  # a list request is tried this often on 429, 5xx or a lost connection


@dataclass(frozen=True)
class LoopConfig:
    """What to run: users, simulated days, list length, pace, start and seed."""

    users: int = 50
    days: float = 1.0
    k: int = 10
    speed: float = 0.0
    start: datetime | None = None
    dates: Literal["real", "simulated"] = "real"
    seed: int = 0
    batch: int = 500

    def __post_init__(self) -> None:
        problems = []
        if self.users < 1:
            problems.append("users must be >= 1")
        if not self.days > 0:
            problems.append("days must be > 0")
        if not 1 <= self.k <= 1000:
            problems.append("k must be within 1..1000")
        if not self.speed >= 0:
            problems.append("speed must be >= 0")
        if self.dates not in ("real", "simulated"):
            problems.append("dates must be real or simulated")
        if self.start is not None and self.start.tzinfo is None:
            problems.append("start must be timezone-aware")
        if self.batch < 1:
            problems.append("batch must be >= 1")
        if problems:
            raise ValueError("invalid LoopConfig: " + "; ".join(problems))


@dataclass
class VariantTruth:
    """One variant's traffic, what users did, and what the truth says of what it served."""

    users: set[str] = field(default_factory=set)
    lists: int = 0
    shown: int = 0
    clicks: int = 0
    plays: int = 0
    seconds: float = 0.0
    likes: int = 0
    purchases: int = 0
    expected_clicks: float = 0.0
    utility_by_user: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        per_user = [float(np.mean(v)) for v in self.utility_by_user.values() if v]
        return {
            "users": len(self.users),
            "lists": self.lists,
            "items_shown": self.shown,
            "clicks": self.clicks,
            "plays": self.plays,
            "play_seconds": round(self.seconds, 1),
            "likes": self.likes,
            "purchases": self.purchases,
            "click_through": self.clicks / self.shown if self.shown else None,
            "true_click_through": self.expected_clicks / self.shown if self.shown else None,
            "true_utility_per_user": float(np.mean(per_user)) if per_user else None,
        }


@dataclass
class LoopSummary:
    """What a run sent and got back, and the truth per variant."""

    start: datetime
    end: datetime
    requests: int = 0
    failed_requests: int = 0
    with_list_id: int = 0
    unknown_items: int = 0
    events_sent: int = 0
    events_accepted: int = 0
    events_rejected: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    experiments: set[str] = field(default_factory=set)
    variants: dict[str, VariantTruth] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "with_list_id": self.with_list_id,
            "unknown_items": self.unknown_items,
            "events": {
                "sent": self.events_sent,
                "accepted": self.events_accepted,
                "rejected": self.events_rejected,
                "rejections": dict(sorted(self.rejections.items())),
            },
            "experiments": sorted(self.experiments),
            "variants": {name: v.as_dict() for name, v in sorted(self.variants.items())},
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True, order=True)
class Visit:
    at_us: int
    user: int


def plan_visits(model: UserModel, config: LoopConfig, start_us: int) -> list[Visit]:
    """Every visit of the run in time order: users drawn once, Poisson visits at their own
    rate, times of day from the world's hourly cycle (UTC)."""
    rng = np.random.default_rng([config.seed, 1])
    count = min(config.users, model.spec.users)
    users = np.sort(rng.choice(model.spec.users, count, replace=False))
    visits = rng.poisson(model.visit_rate(users) * config.days)
    owner = np.repeat(users, visits)
    span_us = int(config.days * 86_400 * MICROS_PER_SECOND)
    # Whole days follow the hourly profile; a fractional last day is cut where it ends.
    day = rng.integers(0, int(np.ceil(config.days)), len(owner))
    hour = np.searchsorted(np.cumsum(model.world.hourly), rng.random(len(owner)), side="right")
    offset = (day * 24 + np.minimum(hour, 23)) * 3600 + rng.uniform(0, 3600, len(owner))
    at = (offset * MICROS_PER_SECOND).astype(np.int64)
    keep = at < span_us
    return sorted(
        Visit(start_us + int(t), int(u)) for t, u in zip(at[keep], owner[keep], strict=True)
    )


class ClosedLoop:
    """One run against one gateway. ``http`` carries the base URL and the API key (read and
    ingest scopes); ``client`` sends the events through the same connection pool."""

    def __init__(
        self,
        model: UserModel,
        http: httpx.Client,
        config: LoopConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.model = model
        self.http = http
        self.client = TastebudClient(str(http.base_url), http=http, batch_size=config.batch)
        self.config = config
        self.sleep = sleep
        self.clock = clock
        self.wall = wall
        self.progress = progress
        self.rng = np.random.default_rng([config.seed, 2])
        self.exam = model.examination(config.k)
        self.pending: list[dict[str, Any]] = []
        self.device = [DEVICES[d] for d in model.world.user_device]

    def run(self) -> LoopSummary:
        config = self.config
        start = config.start or datetime.now(UTC).replace(microsecond=0)
        start_us = micros(start)
        summary = LoopSummary(start=start, end=start + timedelta(days=config.days))
        self.tag = f"sim{config.seed}.{start_us // MICROS_PER_SECOND}"
        visits = plan_visits(self.model, config, start_us)
        began = self.clock()
        for number, visit in enumerate(visits):
            self._pace((visit.at_us - start_us) / MICROS_PER_SECOND, began, summary)
            answer = self._recommendations(visit, summary)
            if answer is not None:
                self._visit(number, visit, answer, summary)
            if len(self.pending) >= config.batch:
                self._flush(summary)
            if self.progress is not None:
                self.progress(number + 1, len(visits))
        self._flush(summary)
        summary.seconds = self.clock() - began
        return summary

    def _pace(self, simulated: float, began: float, summary: LoopSummary) -> None:
        """Wait until real time catches up with ``simulated`` seconds at ``speed``."""
        if self.config.speed <= 0:
            return
        wait = simulated / self.config.speed - (self.clock() - began)
        if wait > 0:
            if wait > 1.0:
                self._flush(summary)  # what happened so far reaches the server first
            self.sleep(wait)

    def _recommendations(self, visit: Visit, summary: LoopSummary) -> dict[str, Any] | None:
        """The user's list, retried on 429 and 5xx; None (counted) when it never came."""
        user_id = quote(self.model.user_id(visit.user), safe="")
        params = {"k": self.config.k, "explain": "false", "metadata": "false"}
        summary.requests += 1
        for attempt in range(REQUEST_ATTEMPTS):
            try:
                response = self.http.get(f"/v1/users/{user_id}/recommendations", params=params)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code not in RETRY_STATUSES:
                break
            if attempt + 1 < REQUEST_ATTEMPTS:
                self.sleep(min(2.0, 0.1 * 2**attempt))
        if response is None or response.status_code in (401, 403):
            raise GatewayError(
                response.status_code if response is not None else 0,
                "unreachable" if response is None else "unauthorized",
                "the gateway did not answer" if response is None else response.text[:200],
            )
        if not response.is_success:
            summary.failed_requests += 1
            return None
        document: dict[str, Any] = response.json()
        return document

    def _visit(
        self, number: int, visit: Visit, answer: dict[str, Any], summary: LoopSummary
    ) -> None:
        """Look at the list, click by position and utility, react; queue the events."""
        model, user_id = self.model, self.model.user_id(visit.user)
        ids = [str(item.get("item_id")) for item in answer.get("items") or []][: self.config.k]
        index = [model.item_index(item_id) for item_id in ids]
        known = np.array([i is not None for i in index], dtype=bool)
        summary.unknown_items += int((~known).sum())
        items = np.array([i if i is not None else 0 for i in index], dtype=np.int64)
        utility = model.utility(np.array([visit.user]), items)[0] * known
        click_p = model.click_probability(utility) * known
        exam = self.exam[: len(ids)]
        clicked = (self.rng.random(len(ids)) < exam) & (self.rng.random(len(ids)) < click_p)
        variant = NO_VARIANT
        if answer.get("experiment"):
            summary.experiments.add(str(answer["experiment"]))
            variant = f"{answer['experiment']}/{answer.get('variant')}"
        truth = summary.variants.setdefault(variant, VariantTruth())
        truth.users.add(user_id)
        truth.lists += 1
        truth.shown += len(ids)
        truth.expected_clicks += float((exam * click_p).sum())
        if ids:
            truth.utility_by_user.setdefault(user_id, []).append(float(utility.mean()))
        list_id = answer.get("list_id")
        summary.with_list_id += bool(list_id)
        positions = np.flatnonzero(clicked)
        if len(positions):
            self._react(number, visit, ids, items[positions], positions, utility, list_id, truth)

    def _when(self, visit: Visit) -> tuple[float, float]:
        """Where a visit's events start (epoch seconds) and how simulated seconds after it
        map to timestamps: real dates start when the list came and shrink by ``speed``."""
        if self.config.dates == "simulated":
            return visit.at_us / MICROS_PER_SECOND, 1.0
        speed = self.config.speed
        return self.wall(), (1.0 / speed if speed > 0 else 0.0)

    def _react(
        self,
        number: int,
        visit: Visit,
        ids: list[str],
        items: np.ndarray,
        positions: np.ndarray,
        utility: np.ndarray,
        list_id: Any,
        truth: VariantTruth,
    ) -> None:
        """A click, a play, and maybe a skip, a like and a purchase per clicked item, dated
        a few seconds apart after the visit (one item at a time down the list)."""
        reactions = self.model.react(self.rng, utility[positions], items)
        prices = self.model.price(items)
        user_id = self.model.user_id(visit.user)
        session = f"{self.tag}.{number}"
        base, scale = self._when(visit)
        at = 0.0
        for n, position in enumerate(positions.tolist()):
            at += 2.0 + float(self.rng.exponential(5.0))
            seconds = float(reactions.seconds[n])
            kinds: list[tuple[str, float | None, float]] = [
                ("click", None, 0.0),
                ("play", seconds, 1.0),
            ]
            if reactions.skipped[n]:
                kinds.append(("skip", seconds, 1.0 + seconds))
            if reactions.liked[n]:
                kinds.append(("like", None, 1.0 + seconds / 2))
            if reactions.bought[n]:
                kinds.append(("purchase", float(prices[n]), 2.0 + seconds))
            context: dict[str, Any] = {"position": position + 1}
            if list_id:
                context["list_id"] = str(list_id)
            for kind, value, offset in kinds:
                event: dict[str, Any] = {
                    "event_id": f"{session}.{position}.{kind}",
                    "user_id": user_id,
                    "item_id": ids[position],
                    "event_type": kind,
                    "timestamp": _iso(base + (at + offset) * scale),
                    "session_id": session,
                    "device_type": self.device[visit.user],
                    "context": context,
                }
                if value is not None:
                    event["value"] = value
                self.pending.append(event)
            at += 1.0 + seconds
            truth.clicks += 1
            truth.plays += 1
            truth.seconds += seconds
            truth.likes += int(reactions.liked[n])
            truth.purchases += int(reactions.bought[n])

    def _flush(self, summary: LoopSummary) -> None:
        if not self.pending:
            return
        events, self.pending = self.pending, []
        result = self.client.send_events(events)
        summary.events_sent += len(events)
        summary.events_accepted += result.accepted + result.duplicates
        summary.events_rejected += result.rejected
        for rejected in result.rejected_results():
            reasons = rejected.get("reasons") or ["unknown"]
            reason = str(reasons[0] if isinstance(reasons, list) else reasons)
            summary.rejections[reason] = summary.rejections.get(reason, 0) + 1


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def run_loop(
    model: UserModel,
    url: str,
    api_key: str | None,
    config: LoopConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 30.0,
) -> LoopSummary:
    """Run the loop against the gateway at ``url`` with ``api_key`` (read and ingest)."""
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=timeout) as http:
        return ClosedLoop(model, http, config, progress=progress).run()
