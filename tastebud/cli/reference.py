"""``docs/reference.md``: every command, job and HTTP route, generated from the code.

Hand-kept lists drifted (the README said recommendations over HTTP were still to come long
after they shipped), so these tables are rendered from the objects themselves: the Typer
app, the job registry and the FastAPI app. ``tests/test_docs_reference.py`` fails when the
file is not what this module renders; regenerate it with::

    .venv/bin/python -m tastebud.cli.reference --write docs/reference.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from tastebud.cli.main import app

HEADER = """# Reference: commands, jobs and HTTP routes

Generated from the code by `python -m tastebud.cli.reference --write docs/reference.md`;
`tests/test_docs_reference.py` fails when it is out of date. The README and the other
documents explain these; this page only lists them, all of them.
"""


def _first_line(text: str | None) -> str:
    """The first sentence-line of a help text, as a table cell."""
    line = (text or "").strip().split("\n\n")[0].replace("\n", " ").replace("``", "`")
    return " ".join(line.split()).replace("|", "\\|")


def commands() -> list[tuple[str, str]]:
    """``(tastebud GROUP COMMAND, help)`` for every command, groups included."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, str]]:
        yield " ".join(path), _first_line(command.help)
        children = getattr(command, "commands", None) or {}  # a group
        for name in sorted(children):
            yield from walk(children[name], [*path, name])

    group = typer.main.get_command(app)
    group.load_all()  # type: ignore[attr-defined]  # the commands, not their placeholders
    return list(walk(group, ["tastebud"]))[1:]


def jobs() -> list[tuple[str, str, str, str]]:
    """``(name, schedule, timeout, description)`` of every registered job."""
    from tastebud.jobs.definitions import build_registry  # lazy: CLI start-up

    rows = []
    for job in build_registry():
        timeout = f"{job.timeout_seconds:g} s"
        status = job.description if job.available else f"not available: {job.reason}"
        rows.append((job.name, job.schedule.describe(), timeout, _first_line(status)))
    return rows


def routes() -> list[tuple[str, str, str, str]]:
    """``(method, path, scope, summary)`` of every HTTP route of ``tastebud serve``."""
    from fastapi.routing import APIRoute, iter_route_contexts  # lazy: FastAPI, only to list routes
    from starlette.routing import Route  # lazy: FastAPI, only to list routes

    from tastebud.api.app import create_app  # lazy: CLI start-up
    from tastebud.config import Settings  # lazy: CLI start-up

    app = create_app(Settings(home=Path("/nonexistent")))
    rows = []
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if isinstance(original, APIRoute):
            scope = _scope(route.dependant) or "none"
            summary = original.summary or _first_line(original.description)
        elif isinstance(original, Route):
            scope, summary = "none", "OpenAPI schema and its interactive page"
        else:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                rows.append((method, route.path_format, scope, _first_line(summary)))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def _scope(dependant: Any) -> str | None:
    for sub in dependant.dependencies:
        scope = getattr(sub.call, "required_scope", None)
        if scope is None:
            scope = _scope(sub)
        if scope is not None:
            return str(scope)
    return None


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render() -> str:
    command_rows = [(f"`{name}`", text) for name, text in commands()]
    job_rows = [(f"`{name}`", schedule, timeout, text) for name, schedule, timeout, text in jobs()]
    route_rows = [(method, f"`{path}`", scope, text) for method, path, scope, text in routes()]
    return "\n".join(
        [
            HEADER,
            "## Commands",
            "",
            "`tastebud COMMAND --help` gives each one's options.",
            "",
            _table(("command", "what"), command_rows),
            "",
            "## Jobs",
            "",
            "`tastebud jobs run NAME` runs one interval; `tastebud scheduler` runs them on "
            "these schedules (UTC). See [jobs.md](jobs.md).",
            "",
            _table(("job", "schedule", "timeout", "what"), job_rows),
            "",
            "## HTTP routes",
            "",
            "Served by `tastebud serve`; `scope` is the API key scope a route needs (`admin` "
            "keys have every scope). See the README's HTTP API section and `/docs`.",
            "",
            _table(("method", "path", "scope", "what"), route_rows),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="Write here instead of printing.")
    args = parser.parse_args(argv)
    text = render()
    if args.write is None:
        sys.stdout.write(text)
    else:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
