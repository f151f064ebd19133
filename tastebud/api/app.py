"""The app factory: ``create_app(settings)`` builds the FastAPI app; its lifespan opens the
stores when the server starts and closes them when it stops (nothing at import time).

``uvicorn --factory tastebud.api.app:app_from_environment`` is what ``tastebud serve`` runs in
each worker: settings come from tastebud.toml and TASTEBUD_* variables, as for every command.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import tastebud
from tastebud.api import errors
from tastebud.api.deps import AppState, require
from tastebud.api.openapi import openapi_document
from tastebud.api.query import single_query_values
from tastebud.api.routes import app as app_routes
from tastebud.api.routes import (
    catalog,
    dlq,
    events,
    health,
    history,
    home,
    jobs,
    monitoring,
    push,
    quality,
)
from tastebud.api.routes import experiments as experiment_routes
from tastebud.api.routes import features as feature_routes
from tastebud.api.routes import models as model_routes
from tastebud.api.routes import ratings as rating_routes
from tastebud.api.routes import recommendations as ranking_routes
from tastebud.api.routes import trending as trending_routes
from tastebud.api.schemas import (
    error_responses,
)
from tastebud.api.serving import Serving
from tastebud.config import BudgetSettings, EventRules, Settings, load_settings
from tastebud.gateway.dlq import DlqShareMonitor
from tastebud.gateway.ingestion import EventGateway
from tastebud.gateway.keys import KeyAuthenticator
from tastebud.gateway.metrics import REQUEST_SECONDS, REQUESTS
from tastebud.gateway.shared_ratelimit import limiter_for
from tastebud.observability import bind_context, clear_context, configure_logging, get_logger
from tastebud.ranking.retrieval import limit_threads
from tastebud.schemas import rules_in_force
from tastebud.stores import Stores, open_stores
from tastebud.stores.activity import RecentActivity
from tastebud.stores.budget import within_budget
from tastebud.stores.errors import StoreError

log = get_logger("tastebud.api")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _open_feature_store(app: FastAPI) -> None:
    """Opens the feature store at start-up, outside any request's budget: opened by the first
    ``POST /v1/features`` instead, its first PostgreSQL connection had only that request's
    50 ms and a loaded machine answered 503. If it cannot open now, the first request tries
    again and reports why."""
    try:
        feature_routes.feature_store(app)
    except (errors.ApiError, StoreError) as error:
        log.warning("feature_store_not_opened", error=str(error))


def create_app(settings: Settings) -> FastAPI:
    """A gateway app over the stores ``settings`` name; they open in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Blocking request work (event appends, catalog and key reads) runs on this many
        # threads, not anyio's 40: each thread keeps its own SQLite connections and malloc
        # arena, and appends are serialized anyway (docs/benchmarks.md, "Soak").
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.gateway.threads
        stores = open_stores(settings)
        serving = Serving()
        try:
            app.state.tastebud = _app_state(settings, stores)
            recommendations = await serving.open(
                app, settings, stores, lambda: feature_routes.feature_store(app).service
            )
            app.state.recommendations = recommendations
            await anyio.to_thread.run_sync(_open_feature_store, app)
            log.info(
                "gateway_started",
                database=_scheme(settings.resolved_database_url),
                model_version=recommendations.snapshot.model_version,
            )
            yield
        finally:
            await serving.close()
            feature_routes.close_feature_store(app)
            quality.close_results_store(app)
            monitoring.close_results_store(app)
            jobs.close_run_history(app)
            experiment_routes.close_experiment_store(app)
            state = getattr(app.state, "tastebud", None)
            if state is not None:
                await state.limiter.aclose()
            stores.close()

    app = FastAPI(
        title="tastebud",
        version=tastebud.__version__,
        description=(
            "Feedback events in: validated, enriched, stored durably and exactly once. "
            "Authenticate with an API key (`tastebud keys create`) sent as "
            "`Authorization: Bearer KEY` or `X-API-Key: KEY`. Errors are "
            '`{"error": {"code", "message"}}` with a stable `code`.'
        ),
        lifespan=lifespan,
        dependencies=[Depends(single_query_values)],
    )
    errors.install(app)
    _include_routes(app, settings)
    _add_middleware(app, settings)
    app.openapi = lambda: openapi_document(app, settings)  # type: ignore[method-assign]
    return app


def _app_state(settings: Settings, stores: Stores) -> AppState:
    """What every request reads: the stores, the event gateway, key checks, rate limits."""
    gateway = EventGateway(
        stores,
        settings,
        monitor=DlqShareMonitor.from_settings(settings.gateway),
        activity=RecentActivity(
            stores.online,
            settings.events.types,
            keep=settings.serving.recent_activity,
            ttl_seconds=settings.serving.recent_activity_ttl_days * 86_400,
        ),
    )
    return AppState(
        settings=settings,
        stores=stores,
        gateway=gateway,
        keys=KeyAuthenticator(
            stores.database.gateway.keys,
            settings.gateway.key_cache_seconds,
            outage_seconds=settings.gateway.key_outage_seconds,
            miss_seconds=settings.gateway.key_miss_cache_seconds,
        ),
        limiter=limiter_for(
            stores.online,
            settings.budgets,
            shared=settings.gateway.shared_rate_limits,
        ),
    )


def _include_routes(app: FastAPI, settings: Settings) -> None:
    """Every router, the read-scoped ones behind an API key with ``read``."""
    app.include_router(events.router)
    # Before the catalog's /v1/users/{id:path}: ids may hold "/", so the longer routes first.
    app.include_router(
        ranking_routes.router,
        dependencies=[Depends(require("read"))],
        responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503),
    )
    app.include_router(
        rating_routes.router,
        dependencies=[Depends(require("read"))],
        responses=error_responses(401, 403, 409, 422, 429, 503),
    )
    app.include_router(
        history.router,
        dependencies=[Depends(require("read"))],
        responses=error_responses(401, 403, 422, 429, 503),
    )
    app.include_router(catalog.router)
    app.include_router(health.router)
    app.include_router(home.router)
    app.include_router(
        model_routes.router, responses=error_responses(401, 403, 404, 409, 422, 429, 503)
    )
    app.include_router(
        dlq.router,
        dependencies=[Depends(require("read"))],
        responses=error_responses(401, 403, 422, 429, 503),
    )
    app.include_router(
        jobs.router,
        dependencies=[Depends(require("read"))],
        responses=error_responses(401, 403, 422, 429, 503),
    )
    app.include_router(
        trending_routes.router,
        dependencies=[Depends(require("read"))],
        responses=error_responses(401, 403, 404, 422, 429, 503),
    )
    app.include_router(
        feature_routes.router,
        dependencies=[Depends(require("read"))],
        responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    )
    app.include_router(push.router)
    app.include_router(quality.router, responses=error_responses(401, 403, 422, 429, 503))
    app.include_router(monitoring.router, responses=error_responses(401, 403, 422, 429, 503))
    app.include_router(
        experiment_routes.router,
        responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
    )
    if settings.app.enabled:
        app_routes.install(app)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """CORS when origins are configured; the request middleware (ids, budgets, limits)."""
    if settings.gateway.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.gateway.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.gateway.max_body_bytes,
        budgets=settings.budgets,
        rules=settings.events,
        max_header_bytes=settings.gateway.max_header_bytes,
        max_headers=settings.gateway.max_headers,
    )


def app_from_environment() -> FastAPI:
    """The factory uvicorn calls in each worker process."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    # One request is one thread's work: BLAS and faiss fanning out over every core per
    # request only adds contention between workers (tastebud.ranking.retrieval).
    limit_threads(1)
    return create_app(settings)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0]


# Request ids come from a generator of their own, seeded from the OS once per process (and
# again in a forked child), so that nothing seeding the global ``random`` repeats them.
_request_ids = random.Random()
os.register_at_fork(after_in_child=_request_ids.seed)


def _new_request_id() -> str:
    """A random 128-bit id. Not ``uuid4``: it reads ``os.urandom``, a system call that lets
    go of the GIL, and under load the event loop then waits for the request threads to hand
    it back (measured: 0.57 ms per request). Request ids need no cryptographic strength."""
    return f"{_request_ids.getrandbits(128):032x}"


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _content_coding(headers: dict[bytes, bytes]) -> str | None:
    """The body's Content-Encoding when it is one the server does not decode (any but
    ``identity``): refused with 415 (RFC 7694) rather than read as if it were plain."""
    coding = headers.get(b"content-encoding")
    if coding is None:
        return None
    name = coding.decode("latin-1").strip()
    return None if name.lower() in ("", "identity") else name[:40]


class RequestMiddleware:
    """Per request: an id (``X-Request-ID``, echoed or made), the store budgets
    (``tastebud.stores.budget``), a log line and metrics, an early 413 when the declared
    body size is over the limit and a 415 for a compressed body. Pure ASGI: a
    BaseHTTPMiddleware would cost a task and a queue per request."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        budgets: BudgetSettings,
        rules: EventRules,
        max_header_bytes: int = 16 * 1024,
        max_headers: int = 100,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.budgets = budgets
        self.rules = rules
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw_headers = scope.get("headers") or []
        headers = dict(raw_headers)
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.fullmatch(given) else _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        clear_context()
        bind_context(request_id=request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            declared = headers.get(b"content-length", b"")
            if len(raw_headers) > self.max_headers:
                message = f"more than {self.max_headers} request headers"
                await self._refuse(send_with_id, request_id, 431, "headers_too_large", message)
            elif sum(len(k) + len(v) + 4 for k, v in raw_headers) > self.max_header_bytes:
                message = f"the request headers are larger than {self.max_header_bytes} bytes"
                await self._refuse(send_with_id, request_id, 431, "headers_too_large", message)
            elif declared.isdigit() and int(declared) > self.max_body_bytes:
                message = f"the body is larger than {self.max_body_bytes} bytes"
                await self._refuse(send_with_id, request_id, 413, "body_too_large", message)
            elif scope["method"] in BODY_METHODS and (coding := _content_coding(headers)):
                message = (
                    f"Content-Encoding {coding!r} is not supported; send the body uncompressed"
                )
                await self._refuse(
                    send_with_id, request_id, 415, "unsupported_content_encoding", message
                )
            else:
                with within_budget(self.budgets), rules_in_force(self.rules):
                    await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            REQUESTS.labels(method=scope["method"], route=template, status=str(status)).inc()
            REQUEST_SECONDS.labels(route=template).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                route=template,
                status=status,
                ms=round(elapsed * 1000, 2),
            )
            clear_context()

    async def _refuse(
        self, send: Send, request_id: str, status: int, code: str, message: str
    ) -> None:
        """Answer before the app sees the request (and close the connection)."""
        body = json.dumps(
            {"error": {"code": code, "message": message, "request_id": request_id}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
