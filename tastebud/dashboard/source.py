"""Where the dashboard's data comes from: one ``DataSource`` over tastebud's HTTP API.

``HttpSource`` talks to a running server with an API key. ``InProcessSource`` serves the same
API app (``create_app``) inside the dashboard's process, over the stores the settings name,
and calls it without a socket (starlette's in-process transport). Both ask the same routes,
so every page sees the same answers, validation and errors whichever is used; there is no
second way to read a model or rank a list that could drift from what the server does.

Every failure becomes a ``DashboardError`` whose message a page shows as it is: the server
cannot be reached, the key is unknown or revoked, or the API's own ``{"error": {"code",
"message"}}``.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

import httpx

from tastebud.config import Settings

TIMEOUT_SECONDS = 30.0


def _id(value: str) -> str:
    """An id as one path segment of a route that takes ``{id:path}`` (ids may hold "/")."""
    return quote(value, safe="/:@+=~|-._")


class DashboardError(Exception):
    """A message for the page: what failed and, where it helps, what to do."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class DataSource:
    """The API calls the pages make; the transport is the subclass's."""

    where: str = ""

    def __init__(self, client: httpx.Client, where: str) -> None:
        self.client = client
        self.where = where

    # -- transport --------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else None
        try:
            response = self.client.request(method, path, params=params, json=json, headers=headers)
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise DashboardError(
                f"cannot reach the tastebud server at {self.where}: {reason}."
                " Is `tastebud serve` running there?"
            ) from None
        if response.status_code >= 400:
            raise _error_of(response, admin=key is not None)
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {name: value for name, value in params.items() if value is not None}
        return self.request("GET", path, params=clean).json()

    # -- reads ------------------------------------------------------------------------

    def users(self, *, after: str | None = None, limit: int = 200) -> dict[str, Any]:
        return self.get("/v1/users", after=after, limit=limit)  # type: ignore[no-any-return]

    def history(self, user_id: str, limit: int = 20) -> dict[str, Any]:
        return self.get(f"/v1/users/{_id(user_id)}/events", limit=limit)  # type: ignore[no-any-return]

    def recommend(
        self,
        *,
        user_id: str | None = None,
        recent_items: list[str] | None = None,
        k: int = 10,
        ranking: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], float]:
        """One list (for a user, or an anonymous session's recent items) and the seconds
        the server took to answer."""
        body: dict[str, Any] = {"k": k, "ranking": ranking or None}
        if user_id is not None:
            body["users"] = [user_id]
        else:
            body["recent_items"] = recent_items or []
        started = time.perf_counter()
        answer = self.request("POST", "/v1/recommendations", json=body).json()
        return answer["results"][0], time.perf_counter() - started

    def similar(self, item_id: str, k: int = 10) -> dict[str, Any]:
        return self.get(f"/v1/items/{_id(item_id)}/similar", k=k)  # type: ignore[no-any-return]

    def popular(self, k: int = 50) -> dict[str, Any]:
        return self.get("/v1/popular", k=k)  # type: ignore[no-any-return]

    def models(self) -> dict[str, Any]:
        return self.get("/v1/models")  # type: ignore[no-any-return]

    def training(self, version: str) -> dict[str, Any]:
        return self.get(f"/v1/models/{_id(version)}/training")  # type: ignore[no-any-return]

    def monitoring(self) -> dict[str, Any]:
        return self.get("/v1/monitoring")  # type: ignore[no-any-return]

    def quality(self) -> dict[str, Any]:
        return self.get("/v1/quality")  # type: ignore[no-any-return]

    def job_runs(self, limit: int = 200) -> dict[str, Any]:
        return self.get("/v1/jobs/runs", limit=limit)  # type: ignore[no-any-return]

    def dlq(self) -> dict[str, Any]:
        return self.get("/v1/dlq/summary")  # type: ignore[no-any-return]

    def metrics_text(self) -> str:
        return self.request("GET", "/metrics").text

    def experiments(self) -> dict[str, Any]:
        return self.get("/v1/experiments")  # type: ignore[no-any-return]

    def experiment(self, key: str) -> dict[str, Any]:
        """One experiment's definition with its audit trail."""
        return self.get(f"/v1/experiments/{_id(key)}")  # type: ignore[no-any-return]

    def analysis(self, key: str) -> dict[str, Any]:
        """The analysis of one experiment (409 ``no_exposures`` when nothing was served)."""
        return self.get(f"/v1/experiments/{_id(key)}/analysis")  # type: ignore[no-any-return]

    # -- admin writes (an admin key, asked for on the page) ------------------------------

    def promote(self, version: str, alias: str, admin_key: str) -> dict[str, Any]:
        path = f"/v1/models/aliases/{alias}/promote"
        return self.request("POST", path, json={"version": version}, key=admin_key).json()  # type: ignore[no-any-return]

    def rollback(self, alias: str, admin_key: str) -> dict[str, Any]:
        path = f"/v1/models/aliases/{alias}/rollback"
        return self.request("POST", path, key=admin_key).json()  # type: ignore[no-any-return]

    def pause_experiment(
        self, key: str, admin_key: str, *, note: str, variant: str | None = None
    ) -> dict[str, Any]:
        """Pause the experiment, or one variant (its users get control)."""
        body = {"note": note, "variant": variant}
        path = f"/v1/experiments/{_id(key)}/pause"
        return self.request("POST", path, json=body, key=admin_key).json()  # type: ignore[no-any-return]

    def resume_experiment(
        self, key: str, admin_key: str, *, reviewed_by: str, note: str, variant: str | None = None
    ) -> dict[str, Any]:
        """Resume after a person's review: the server requires ``reviewed_by`` and ``note``."""
        body = {"reviewed_by": reviewed_by, "note": note, "variant": variant}
        path = f"/v1/experiments/{_id(key)}/resume"
        return self.request("POST", path, json=body, key=admin_key).json()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.close()


def _error_of(response: httpx.Response, *, admin: bool = False) -> DashboardError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code, message = error.get("code"), error.get("message")
    status = response.status_code
    if status == 401 and admin:
        message = "the admin key is unknown or revoked: type a valid key with the admin scope"
    elif status == 401:
        message = "the API key is unknown or revoked: start the dashboard with a valid read key"
    elif status == 403:
        message = f"the API key may not do this: {message or 'insufficient scope'}"
    elif not message:
        message = f"the server answered {status} {response.reason_phrase}"
    return DashboardError(message, status=status, code=code)


class HttpSource(DataSource):
    """A running server at ``url``, read with ``key`` (a key with the ``read`` scope)."""

    def __init__(self, url: str, key: str | None) -> None:
        url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        super().__init__(httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_SECONDS), url)


class InProcessSource(DataSource):
    """The API app over the settings' stores, in this process: for a laptop with no server
    running. No key is needed (the app is built with ``gateway.auth = false``: whoever runs
    the dashboard can already open the stores)."""

    def __init__(self, settings: Settings) -> None:
        # lazy: the API app loads the serving stack, which an HttpSource never needs
        from starlette.testclient import TestClient

        from tastebud.api.app import create_app  # lazy: as above

        quiet = "log_level" not in settings.model_fields_set  # no log line per page's call
        local = settings.model_copy(
            update={
                "gateway": settings.gateway.model_copy(update={"auth": False}),
                "log_level": "WARNING" if quiet else settings.log_level,
            }
        )
        self._client: AbstractContextManager[Any] = TestClient(
            create_app(local), base_url="http://in-process", raise_server_exceptions=False
        )
        client = self._client.__enter__()  # runs the lifespan: opens stores, loads the model
        super().__init__(client, f"the embedded stores under {settings.home}")

    def close(self) -> None:
        self._client.__exit__(None, None, None)
