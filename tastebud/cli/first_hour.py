"""The second half of ``quickstart``: the jobs a user would run, what the serving pipeline
answers for two real users and what trends, and the server in the foreground.

Everything shown is what HTTP would serve: recommendations come from the same
``RecommendationService`` the server runs (recent activity, published lists, features,
explanations), trending from the list the ``trending`` job published.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from rich.markup import escape

from tastebud.cli.common import console, fail, out, stores_for
from tastebud.cli.companions import Companions, dashboard_port
from tastebud.config import Settings
from tastebud.jobs import JobFailed, JobRunner, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.outputs import read_published
from tastebud.schemas import Item
from tastebud.stores import EventQuery, StoreError, Stores

SHOWN_USERS = 2
SHOWN_ITEMS = 5
USERS_FILE_SIZE = 100


def run_jobs(settings: Settings, names: tuple[str, ...], as_of: datetime) -> None:
    """Run each job over its schedule's latest interval at ``as_of``, one line each; a
    refusal or a failure is said and the next job runs."""
    registry = build_registry()
    with open_run_history(settings) as history:
        runner = JobRunner(settings, registry, history)
        for name in names:
            started = time.perf_counter()
            try:
                outcome = runner.run(name, as_of=as_of, trigger="quickstart")
            except JobFailed as error:
                console.print(f"  [red]{name} failed[/]: {escape(str(error))}")
                continue
            seconds = time.perf_counter() - started
            if outcome.status == "refused":
                out.print(
                    f"  [yellow]{name} refused[/]: {escape(outcome.error or '')}", soft_wrap=True
                )
            else:
                out.print(
                    f"  {name}: {_job_summary(name, outcome.output)} ({seconds:.1f}s)",
                    soft_wrap=True,
                )


def _job_summary(name: str, output: dict[str, Any]) -> str:
    if name == "popularity":
        filled = sum(output.get("filled", {}).values())
        extra = f", {filled} filled from longer windows" if filled else ""
        ranked = f"{output.get('items', 0):,} items ranked from {output.get('events', 0):,} events"
        return ranked + extra
    if name == "trending":
        note = f" ({output['note']})" if output.get("note") else ""
        return (
            f"{output.get('trending', 0)} trending of {output.get('candidates', 0)} judged items"
            f"{note}"
        )
    if name == "affinity":
        return f"category affinities of {output.get('users', 0):,} users"
    if name == "materialize":
        views = output.get("views", {})
        published = sum(view.get("published") or 0 for view in views.values())
        return f"{len(views)} feature views, {published:,} online values"
    if name == "embed":
        coverage = output.get("coverage") or {}
        return (
            f"content embeddings of {coverage.get('embedded', 0):,} of "
            f"{coverage.get('items', 0):,} items ({output.get('mode', 'none')})"
        )
    if name == "recommendations":
        if "skipped" in output:
            return f"skipped: {output['skipped']}"
        return f"{output.get('written', 0):,} lists precomputed for serving"
    return str(output)


def pick_users(stores: Stores, as_of: datetime, count: int) -> list[str]:
    """The most active users of the last day before ``as_of`` (of the last week when the
    day had fewer): real users with a recent history to show."""
    for days in (1, 7, 3650):
        events = stores.events.read_arrow(EventQuery(start=as_of - timedelta(days=days), end=as_of))
        if events.num_rows == 0:
            continue
        counts = events.group_by("user_id").aggregate([("event_id", "count")])
        order = pc.sort_indices(
            counts, [("event_id_count", "descending"), ("user_id", "ascending")]
        )
        ranked = counts.take(order).column("user_id").to_pylist()
        if len(ranked) >= count or days == 3650:
            return ranked[:count] if count else ranked
    return []


def last_items(
    stores: Stores, settings: Settings, user: str, as_of: datetime
) -> list[dict[str, Any]]:
    """The user's newest positive events, one per item, newest first."""
    weights = {name: spec.weight for name, spec in settings.events.types.items()}
    recent = stores.events.read_arrow(
        EventQuery(user_ids=[user], end=as_of, order="desc", limit=200)
    )
    seen: set[str] = set()
    found = []
    for row in recent.select(["item_id", "event_type", "timestamp"]).to_pylist():
        if weights.get(row["event_type"], 0.0) <= 0 or row["item_id"] in seen:
            continue
        seen.add(row["item_id"])
        found.append(row)
        if len(found) == SHOWN_ITEMS:
            break
    return found


def _label(item_id: str, items: dict[str, Item]) -> str:
    item = items.get(item_id)
    if item is None or not item.title:
        return escape(item_id)
    creator = f" · {item.creator}" if item.creator else ""
    category = f" · {item.categories[0]}" if item.categories else ""
    return f"[bold]{escape(item.title)}[/]{escape(creator + category)} ({escape(item_id)})"


def _ago(moment: datetime, as_of: datetime) -> str:
    seconds = (as_of - moment).total_seconds()
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min before"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.0f} h before"
    return f"{seconds / 86_400:.0f} days before"


def show(settings: Settings, stores: Stores, as_of: datetime) -> list[str]:
    """Print two users' last items and recommendations, and the trending list; returns the
    users shown."""
    from tastebud.ranking.pipeline import RankRequest  # lazy: CLI start-up
    from tastebud.ranking.recommender import RecommendationService  # lazy: CLI start-up

    users = pick_users(stores, as_of, SHOWN_USERS)
    service = RecommendationService(settings, stores)
    service.start(watch=False)
    try:
        for user in users:
            history = last_items(stores, settings, user, as_of)
            served = service.recommend(user, RankRequest(k=SHOWN_ITEMS, explain=True))
            ranked = served.ranked.items
            items = stores.catalog.get_items(
                [row["item_id"] for row in history] + [entry.item_id for entry in ranked]
            )
            out.print(f"  [bold]{escape(user)}[/], last items:", soft_wrap=True)
            for row in history:
                out.print(
                    f"    {row['event_type']:<8} {_label(row['item_id'], items)}, "
                    f"{_ago(row['timestamp'], as_of)}",
                    soft_wrap=True,
                )
            out.print(
                f"  recommended for {escape(user)} ({served.ranked.segment} user):", soft_wrap=True
            )
            for rank, entry in enumerate(ranked, start=1):
                why = f" — {escape(entry.explanation)}" if entry.explanation else ""
                out.print(f"    {rank}. {_label(entry.item_id, items)}{why}", soft_wrap=True)
    finally:
        service.stop()
    _show_trending(stores)
    return users


def _show_trending(stores: Stores) -> None:
    document = read_published(stores.online, "trending")
    if document is None:
        out.print("  trending: nothing published")
        return
    entries = document.get("items", [])[:SHOWN_ITEMS]
    out.print(f"  trending (as of {document.get('as_of')}):", soft_wrap=True)
    if not entries:
        out.print(
            f"    none: {escape(str(document.get('note') or 'nothing rose enough'))}",
            soft_wrap=True,
        )
        return
    items = stores.catalog.get_items([entry["item_id"] for entry in entries])
    for entry in entries:
        out.print(
            f"    {entry['rank']}. {_label(entry['item_id'], items)}, "
            f"{entry['lift']:.1f}x its usual engagement",
            soft_wrap=True,
        )


def write_users(stores: Stores, as_of: datetime, path: Path, shown: list[str]) -> Path:
    """The shown users, then the day's most active ones: the input of ``tastebud recommend
    --users``."""
    ranked = pick_users(stores, as_of, USERS_FILE_SIZE)
    users = list(dict.fromkeys([*shown, *ranked]))[:USERS_FILE_SIZE]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("user_id\n" + "".join(f"{user}\n" for user in users))
    return path


def read_key(settings: Settings, stores: Stores) -> str:
    """A read-scope API key for the printed ``curl``: the one kept in
    ``$TASTEBUD_HOME/quickstart-read.key`` (mode 600) while it still works, else a new one
    (keys are stored hashed, so the secret cannot be shown again any other way)."""
    keys = stores.database.gateway.keys
    path = settings.home / "quickstart-read.key"
    try:
        secret = path.read_text().strip()
        if secret and keys.authenticate(secret) is not None:
            return secret
    except OSError:
        pass
    created = keys.create(["read"], "quickstart read key")
    assert created is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(created[1] + "\n")
    return created[1]


def _socket(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``port``; when the default 8000 is taken, on a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in [8000, 0] if port is None else [port]:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as error:
            sock.close()
            if port is not None or candidate == 0:
                raise OSError(f"cannot listen on {host}:{candidate}: {error}") from None
            console.print("[yellow]note[/] port 8000 is taken; serving on a free port")
            continue
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock
    raise OSError("no port to listen on")  # pragma: no cover - the loop returns or raises


def serve_foreground(
    settings: Settings, host: str | None, port: int | None, user: str | None
) -> None:
    """Serve the API on this world until Ctrl-C, with the scheduler and the dashboard beside
    it (``companions``); once it answers, print its URL, a read key, the dashboard's URL and
    a ``curl`` for ``user``. Ctrl-C stops all three."""
    import uvicorn  # lazy: CLI start-up

    from tastebud.api.app import create_app  # lazy: CLI start-up
    from tastebud.api.server import http_protocol  # lazy: CLI start-up
    from tastebud.ranking.retrieval import limit_threads  # lazy: CLI start-up

    host = host or settings.gateway.host
    key = _keys(settings)
    try:
        listener = _socket(host, port)
    except OSError as error:
        raise fail(str(error)) from None
    bound = listener.getsockname()[1]
    limit_threads(1)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{bound}"
    helpers = Companions(settings, host, dashboard_port(host, settings.dashboard.port))
    dashboard = settings.dashboard.model_copy(update={"url": helpers.dashboard_url})
    config = uvicorn.Config(
        create_app(settings.model_copy(update={"dashboard": dashboard})),  # GET / links it
        http=http_protocol(),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    server = uvicorn.Server(config)
    announce = partial(_announce, server, helpers, url, key, user)
    threading.Thread(target=announce, name="quickstart-announce", daemon=True).start()
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on
        pass
    finally:
        listener.close()
        helpers.stop()
    out.print("stopped")


def _keys(settings: Settings) -> str:
    """A read key for the ``curl`` shown; on the first run of the store the admin key is
    created too, and printed this once."""
    from tastebud.gateway.keys import bootstrap_admin_key  # lazy: CLI start-up

    with stores_for(settings) as stores:
        try:
            admin = bootstrap_admin_key(settings, stores.database)
            key = read_key(settings, stores)
        except StoreError as error:
            raise fail(f"cannot create an API key: {error}") from None
    if admin is not None:
        console.print("[bold]Created the first admin API key[/] (shown this once; store it now):")
        out.print(admin, soft_wrap=True, highlight=False)
    return key


def _announce(server: Any, helpers: Companions, url: str, key: str, user: str | None) -> None:
    """Once the server answers, start the scheduler and the dashboard beside it and print
    the URLs, the read key and a ``curl`` to try (run on a thread beside the server; nothing
    when it stops before it starts)."""
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if not server.started:
        return
    path = f"/v1/users/{user}/recommendations?k=5" if user else "/v1/popular?k=5"
    ready = helpers.start(url, key)
    out.print(f"serving {url}  (API docs: {url}/docs; Ctrl-C stops)", highlight=False)
    out.print(f"read key: {key}", highlight=False, soft_wrap=True)
    _announce_companions(helpers, ready, user)
    out.print(
        f"try: curl -s -H 'Authorization: Bearer {key}' '{url}{path}'",
        highlight=False,
        soft_wrap=True,
    )


def _announce_companions(helpers: Companions, ready: bool, user: str | None) -> None:
    """The dashboard's URL (opening ``user``) or where its log says why it did not start,
    and the scheduler's log."""
    link = f"{helpers.dashboard_url}/?user={user}" if user else helpers.dashboard_url
    if ready:
        out.print(
            f"dashboard {link}  (explorer, operations, models, experiments, impact)",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(
            f"[yellow]note[/] the dashboard did not start: see {helpers.log('dashboard.log')}"
        )
    out.print(
        f"scheduler running the job schedules (log: {helpers.log('scheduler.log')})",
        highlight=False,
        soft_wrap=True,
    )
