"""The listener's app at ``/app`` (``tastebud/app``): its static files, the service worker
stamped with the files' version, and ``/app/config.json`` (what a device needs to know: the
VAPID public key, the queue limits, the event types).

Nothing here needs a key: the app signs in with one the listener enters, and calls the
``/v1`` API with it. The service worker is served with ``Cache-Control: no-cache`` so that
browsers see a new version at once; its version names the cache of the app shell.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from tastebud.api.deps import State
from tastebud.app import APP_VERSION_MARK, app_version, static_dir
from tastebud.stores import StoreError

router = APIRouter(include_in_schema=False)
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/app")
async def app_root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=308)


@router.get("/app/")
async def app_shell() -> FileResponse:
    return FileResponse(static_dir() / "index.html", headers=NO_CACHE)


@router.get("/app/sw.js")
async def service_worker() -> Response:
    source = (static_dir() / "sw.js").read_text(encoding="utf-8")
    return Response(
        source.replace(APP_VERSION_MARK, app_version()),
        media_type="text/javascript",
        headers={**NO_CACHE, "Service-Worker-Allowed": "/app/"},
    )


@router.get("/app/config.json")
async def app_config(state: State) -> JSONResponse:
    settings = state.settings

    def vapid_public_key() -> str | None:
        keys = state.stores.database.push.vapid_keys()
        return None if keys is None else keys.public_key

    try:
        public_key = await run_in_threadpool(vapid_public_key)
    except StoreError:  # push is optional: the feed works without it
        public_key = None
    document: dict[str, Any] = {
        "version": app_version(),
        "vapid_public_key": public_key,
        "queue": {
            "max_events": settings.app.queue_max_events,
            "max_age_seconds": settings.app.queue_max_age_hours * 3600,
        },
        "event_types": sorted(settings.events.types),
        "auth": settings.gateway.auth,
    }
    return JSONResponse(document, headers=NO_CACHE)


def install(app: FastAPI) -> None:
    """The routes above, then every other file of the app as static files."""
    app.include_router(router)
    app.mount("/app", StaticFiles(directory=static_dir()), name="app")
