"""``tastebud models rollout``: start, status, pause, resume and abort through the command
line on the configured stores, and its refusals (exit 2 naming the field, 1 for a state that
refuses the action)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import Result
from interaction_data import clustered_table
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.data.interactions import from_table
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.models import ALSRecommender
from tastebud.registry import open_registry
from tastebud.stores import open_stores

runner = CliRunner()


def text(result: Result) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def _register(seed: int, promote: bool = False) -> str:
    settings = load_settings()
    with open_stores(settings) as stores, tempfile.TemporaryDirectory() as scratch:
        registry = open_registry(settings, stores.artifacts)
        matrix = build_matrix(from_table(clustered_table(seed=seed)), MatrixOptions())
        model = ALSRecommender(factors=4, iterations=2, use_gpu=False, random_state=seed)
        folder = model.fit(matrix).save(Path(scratch) / "model")
        manifest = {"model": "als", "user_count": 120, "item_count": 60}
        aliases = ["production"] if promote else []
        return registry.register(folder, manifest, aliases=aliases).model_version


@pytest.mark.usefixtures("home")
def test_rollout_through_the_command_line() -> None:
    _register(0, promote=True)
    version = _register(1)
    started = runner.invoke(
        app, ["models", "rollout", version, "--step-every", "30m", "--actor", "alice", "--json"]
    )
    assert started.exit_code == 0, started.output
    assert json.loads(started.output)["share_percent"] == 1.0
    again = runner.invoke(app, ["models", "rollout", version])
    assert again.exit_code == 1 and "one rollout at a time" in text(again)
    status = runner.invoke(app, ["models", "rollout", "status"])
    assert status.exit_code == 0, status.output
    assert "step 1 of 5" in text(status) and "next step not before" in text(status)
    for action in ("pause", "resume"):
        done = runner.invoke(app, ["models", "rollout", action, "--note", "look", "--json"])
        assert done.exit_code == 0, done.output
    aborted = runner.invoke(app, ["models", "rollout", "abort", version, "--note", "enough"])
    assert aborted.exit_code == 0 and "aborted" in text(aborted)
    assert "reason: enough" in text(aborted)
    over = runner.invoke(app, ["models", "rollout", "abort", version])
    assert over.exit_code == 1 and "is over" in text(over)


@pytest.mark.usefixtures("home")
@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (["--steps", "1,5,50"], "steps"),
        (["--steps", "x"], "steps"),
        (["--step-every", "soon"], "step_every"),
    ],
)
def test_bad_options_name_their_field(arguments: list[str], field: str) -> None:
    version = _register(1)
    result = runner.invoke(app, ["models", "rollout", version, *arguments])
    assert result.exit_code == 2, result.output
    assert f"{field}:" in text(result)


@pytest.mark.usefixtures("home")
def test_unknown_versions_and_rollouts_exit_2() -> None:
    unknown = runner.invoke(app, ["models", "rollout", "20990101T000000Z-abcdef"])
    assert unknown.exit_code == 2 and "version:" in text(unknown)
    nothing = runner.invoke(app, ["models", "rollout", "status"])
    assert nothing.exit_code == 2 and "no rollout yet" in text(nothing)
    garbage = runner.invoke(app, ["models", "rollout", "pause", "nonsense"])
    assert garbage.exit_code == 2, garbage.output
