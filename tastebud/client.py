"""A small Python client for the gateway (httpx): events and catalog calls.

    from tastebud.client import TastebudClient

    with TastebudClient("http://127.0.0.1:8000", api_key="tb_...") as client:
        result = client.send_events([{"user_id": "u1", "item_id": "song-9",
                                      "event_type": "play", "timestamp": "2025-03-01T20:15:00Z"}])
        result.accepted, result.rejected_results()

Safe retries: a request that failed in transit, was rate limited (429) or hit an unavailable
store (503) is sent again, after Retry-After or an exponential backoff with full jitter
(``tastebud.stores.retry``, the retry helper the jobs and the gateway use too). Events are
idempotent on ``event_id`` (derived from content when absent), so a retry never stores an
event twice. Other 4xx answers raise ``GatewayError`` with the server's error code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from tastebud.schemas import Event, Item, User
from tastebud.stores.retry import RetryPolicy, retrying

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class GatewayError(RuntimeError):
    """The gateway refused a request: ``status``, its machine-readable ``code``, ``message``."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


@dataclass
class EventsResult:
    """Per-event results of one or more ``send_events`` requests, in input order."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    def add(self, document: Mapping[str, Any], offset: int) -> None:
        self.accepted += int(document.get("accepted", 0))
        self.duplicates += int(document.get("duplicates", 0))
        self.rejected += int(document.get("rejected", 0))
        for result in document.get("results", []):
            self.results.append({**result, "index": result["index"] + offset})

    def rejected_results(self) -> list[dict[str, Any]]:
        return [result for result in self.results if result["status"] == "rejected"]


@dataclass
class CatalogResult:
    upserted: int = 0
    rejected: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)


def _event_payload(event: Event | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(event, Event):
        document = event.model_dump(mode="json", exclude_none=True)
        document.pop("received_at", None)
        if not document.get("context"):
            document.pop("context", None)
        return document
    return dict(event)


class TastebudClient:
    """One HTTP connection pool to a gateway; close it, or use it in a ``with`` block."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 10.0,
        batch_size: int = 1000,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self._http.headers.update(headers)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.batch_size = batch_size
        self._sleep = sleep

    # --- events ---------------------------------------------------------------------------

    def send_event(self, event: Event | Mapping[str, Any]) -> dict[str, Any]:
        """Send one event; returns its result (status, event_id, reasons)."""
        return self.send_events([event]).results[0]

    def send_events(self, events: Iterable[Event | Mapping[str, Any]]) -> EventsResult:
        """Send events in batches of ``batch_size``; every event gets a result. A batch
        whose events are all invalid is answered 422 by the server, and reported here like any
        other rejection."""
        payloads = [_event_payload(event) for event in events]
        total = EventsResult()
        for offset in range(0, len(payloads), self.batch_size):
            batch = payloads[offset : offset + self.batch_size]
            response = self._request("POST", "/v1/events", json={"events": batch}, allow=(422,))
            total.add(response.json(), offset)
        return total

    # --- catalog ----------------------------------------------------------------------------

    def upsert_items(self, items: Sequence[Item | Mapping[str, Any]]) -> CatalogResult:
        return self._upsert("items", items)

    def upsert_users(self, users: Sequence[User | Mapping[str, Any]]) -> CatalogResult:
        return self._upsert("users", users)

    def _upsert(self, kind: str, entries: Sequence[Any]) -> CatalogResult:
        documents = [
            entry.model_dump(mode="json", exclude_none=True)
            if isinstance(entry, Item | User)
            else dict(entry)
            for entry in entries
        ]
        total = CatalogResult()
        for offset in range(0, len(documents), self.batch_size):
            batch = documents[offset : offset + self.batch_size]
            body = self._request("PUT", f"/v1/{kind}", json={kind: batch}, allow=(422,)).json()
            total.upserted += body["upserted"]
            total.rejected += body["rejected"]
            total.results.extend({**r, "index": r["index"] + offset} for r in body["results"])
        return total

    def get_item(self, item_id: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/v1/items/{quote(item_id, safe='')}")

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/v1/users/{quote(user_id, safe='')}")

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        response = self._request("GET", path, allow=(404,))
        return None if response.status_code == 404 else response.json()

    # --- monitoring -------------------------------------------------------------------------

    def shadow(self) -> dict[str, Any]:
        """The answering worker's shadow model and its recent comparisons with production
        (``GET /v1/monitoring/shadow``, read scope)."""
        document: dict[str, Any] = self._request("GET", "/v1/monitoring/shadow").json()
        return document

    # --- health -----------------------------------------------------------------------------

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    # --- plumbing ---------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send, and send again what failed in transit (``stores.errors.is_transient``: the
        network's errors) or was answered 429/502/503/504, after Retry-After (capped at
        ``max_backoff_seconds``) or a backoff with full jitter (``stores.retry``)."""
        policy = RetryPolicy(
            max_attempts=self.retries + 1,
            base_seconds=self.backoff_seconds,
            cap_seconds=self.max_backoff_seconds,
            jitter=1.0,
        )
        response: httpx.Response = retrying(
            policy,
            retry_result=lambda answer: answer.status_code in RETRY_STATUSES,
            wait_hint=_retry_after,
            sleep=self._sleep,
        )(self._http.request, method, path, **kwargs)
        if response.is_success or response.status_code in allow:
            return response
        raise _error(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _retry_after(response: httpx.Response) -> float | None:
    """The wait a 429 or 503 asks for, in seconds (the delta form of Retry-After)."""
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _error(response: httpx.Response) -> GatewayError:
    try:
        body = response.json()
        error = body["error"]
        return GatewayError(response.status_code, str(error["code"]), str(error["message"]), body)
    except (ValueError, KeyError, TypeError):
        return GatewayError(response.status_code, "http_error", response.text[:200])
