"""The docs name what the code has: docs/reference.md is what ``tastebud.cli.reference``
renders from the Typer app, the job registry and the FastAPI app, and the README names
every top-level command, every job and every HTTP route."""

from __future__ import annotations

import re
from pathlib import Path

from tastebud.cli.reference import commands, jobs, render, routes

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
README = ROOT / "README.md"
REGENERATE = ".venv/bin/python -m tastebud.cli.reference --write docs/reference.md"


def test_the_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text() == render(), f"docs/reference.md is stale: run {REGENERATE}"


def test_every_command_job_and_route_is_in_the_reference() -> None:
    text = REFERENCE.read_text()
    found = [name for name, _ in commands()]
    assert {"tastebud serve", "tastebud recommend", "tastebud jobs list"} <= set(found)
    for name in found:
        assert f"`{name}`" in text
    for name, *_ in jobs():
        assert f"`{name}`" in text
    listed = routes()
    assert ("GET", "/v1/users/{user_id}/recommendations", "read") in {r[:3] for r in listed}
    for method, path, scope, _ in listed:
        assert f"| {method} | `{path}` | {scope} |" in text


def test_the_readme_names_every_command_job_and_route() -> None:
    text = README.read_text()
    assert "docs/reference.md" in text
    top_level = {name.split()[1] for name, _ in commands()}
    missing = [name for name in sorted(top_level) if f"tastebud {name}" not in text]
    assert not missing, f"README does not mention: {missing}"
    missing = [name for name, *_ in jobs() if f"`{name}`" not in text]
    assert not missing, f"README does not mention the jobs: {missing}"
    # Routes as the README writes them: {id} for any parameter.
    readme_paths = {
        re.sub(r"\{[^}]+\}", "{id}", path) for path in re.findall(r"/v1/[^\s`?,)]+", text)
    }
    missing = [
        path
        for _, path, _, _ in routes()
        if path.startswith("/v1/") and re.sub(r"\{[^}]+\}", "{id}", path) not in readme_paths
    ]
    assert not missing, f"README does not mention the routes: {missing}"


def test_serve_help_names_what_it_serves() -> None:
    from typer.testing import CliRunner

    from tastebud.cli.main import app

    shown = CliRunner().invoke(app, ["serve", "--help"])
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", shown.output).split())
    for what in ("events", "recommendations", "similar", "popular", "trending", "features"):
        assert what in text
