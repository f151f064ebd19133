"""The command line starts quickly: its modules import only typer, rich and the standard
library at the top, and the light commands import only what they use. Checked by the modules
a fresh interpreter has loaded, which does not depend on the machine's speed; the timing
itself is measured by ``benchmarks/bench_cli_startup.py`` (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Libraries that cost tens to thousands of milliseconds to import.
MODEL_LIBRARIES = {
    "scipy",
    "sklearn",
    "implicit",
    "faiss",
    "librosa",
    "numba",
    "optuna",
    "fastapi",
    "starlette",
    "uvicorn",
    "pandas",
    "matplotlib",
    "sentence_transformers",
    "torch",
    "hnswlib",
}
DATA_LIBRARIES = {"numpy", "pyarrow", "duckdb", "fsspec", "psycopg", "redis", "httpx"}
SETTINGS_LIBRARIES = {"pydantic", "pydantic_settings", "structlog", "prometheus_client"}

PROBE = """
import json, sys
from tastebud.cli.main import app
args = json.loads(sys.argv[1])
code = 0
if args:
    try:
        app(args, prog_name="tastebud")
    except SystemExit as exit:
        code = exit.code or 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def modules_after(args: list[str], home: Path) -> set[str]:
    """The modules a fresh interpreter has imported after running ``args``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASTEBUD_")}
    env["TASTEBUD_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout.strip().splitlines()[-1])
    assert document["code"] == 0, done.stdout + done.stderr
    return set(document["modules"])


def loaded_after(args: list[str], home: Path) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``args``."""
    return {name.split(".")[0] for name in modules_after(args, home)}


def test_importing_the_cli_and_its_help_import_nothing_heavy(tmp_path: Path) -> None:
    heavy = MODEL_LIBRARIES | DATA_LIBRARIES | SETTINGS_LIBRARIES
    assert loaded_after([], tmp_path) & heavy == set()
    assert loaded_after(["--help"], tmp_path) & heavy == set()


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["keys", "list"], set()),
        (["models", "list"], {"fsspec"}),
        (["jobs", "list"], set()),
        (["stats"], set()),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_light_commands_import_only_what_they_use(
    args: list[str], allowed: set[str], tmp_path: Path
) -> None:
    loaded = loaded_after(args, tmp_path)
    assert loaded & (MODEL_LIBRARIES | DATA_LIBRARIES) <= allowed
    # structlog loads with the first logger used (tastebud.observability); these never log.
    assert "structlog" not in loaded


def test_stats_on_stored_events_reads_the_summary_without_arrow_or_duckdb(tmp_path: Path) -> None:
    """numpy, pyarrow and DuckDB are a third of a second of start-up: ``stats`` reads the
    summary each append keeps (in the tail and in segments), not the events."""
    from event_factories import make_events

    from tastebud.stores import open_database

    with open_database(f"embedded://{tmp_path / 'db'}?segment_rows=30") as database:
        database.events.append(make_events(10, prefix="tail"))
        database.events.append(make_events(40, prefix="segment"))
    assert loaded_after(["stats"], tmp_path) & DATA_LIBRARIES == set()


def test_names_spelled_out_for_help_agree_with_their_source() -> None:
    """Help text names these without importing their modules (see each constant)."""
    from tastebud.cli.evaluate import PROTOCOL_NAMES
    from tastebud.cli.keys import SCOPE_NAMES
    from tastebud.cli.quality import CHECK_NAMES
    from tastebud.config import QUALITY_CHECKS
    from tastebud.evaluation import PROTOCOLS
    from tastebud.stores.keys import SCOPES

    assert SCOPES == SCOPE_NAMES
    assert QUALITY_CHECKS == CHECK_NAMES
    assert tuple(PROTOCOLS) == PROTOCOL_NAMES


def command_modules(modules: set[str]) -> set[str]:
    """The command modules (``tastebud.cli.X``) among ``modules``."""
    shared = {"tastebud.cli", "tastebud.cli.main", "tastebud.cli.common"}
    return {name for name in modules if name.startswith("tastebud.cli.")} - shared


def test_help_imports_no_command_module_and_a_command_only_its_own(tmp_path: Path) -> None:
    """Commands are registered lazily (``tastebud.cli.main.COMMANDS``)."""
    assert command_modules(modules_after([], tmp_path)) == set()
    assert command_modules(modules_after(["--help"], tmp_path)) == set()
    assert command_modules(modules_after(["keys", "list"], tmp_path)) == {"tastebud.cli.keys"}
    assert command_modules(modules_after(["jobs", "list"], tmp_path)) == {"tastebud.cli.jobs"}
    assert command_modules(modules_after(["stats"], tmp_path)) == {"tastebud.cli.data"}


def test_help_spelled_out_for_lazy_commands_is_their_own() -> None:
    """Each placeholder's help is the first paragraph of its command's own help, so the
    command list of ``--help`` reads as it would with every module imported."""
    import inspect

    from tastebud.cli.main import COMMANDS, load_command

    for spec in COMMANDS:
        command = load_command(spec)
        assert inspect.cleandoc(command.help or "").split("\n\n")[0] == spec.help, spec.name


def test_help_prints_the_same_with_every_command_loaded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import typer.main

    from tastebud.cli.main import COMMANDS, app

    def rendered(load: bool) -> str:
        group = typer.main.get_command(app)
        if load:
            group.load_all()  # type: ignore[attr-defined]
        with group.make_context("tastebud", [], resilient_parsing=True) as ctx:
            printed = group.get_help(ctx)  # rich prints the help; click returns it
        return (printed or "") + capsys.readouterr().out

    lazy, loaded = rendered(load=False), rendered(load=True)
    assert lazy == loaded
    assert all(f" {spec.name} " in lazy for spec in COMMANDS)
