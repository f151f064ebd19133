"""``tastebud models``: list, show, promote, rollback, gc, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_helpers import ModelFactory, manifest_for
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.registry import ModelRegistry, open_registry

runner = CliRunner()


@pytest.fixture
def cli_registry(home: Path) -> ModelRegistry:
    """The registry the CLI opens from settings (artifacts under the private home)."""
    return open_registry(load_settings())


def _register(registry: ModelRegistry, make_model: ModelFactory, **overrides: object) -> str:
    return registry.register(make_model(), manifest_for(**overrides)).model_version


@pytest.mark.parametrize(
    "command",
    [["models"], *[["models", name] for name in ("list", "show", "promote", "rollback", "gc")]],
    ids=" ".join,
)
def test_every_models_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_open_registry_uses_the_settings(cli_registry: ModelRegistry, home: Path) -> None:
    assert Path(cli_registry.artifacts.root) == home / "artifacts"
    assert cli_registry.cache_dir == home / "cache" / "models"


def test_list_shows_versions_metrics_and_aliases(
    cli_registry: ModelRegistry, make_model: ModelFactory
) -> None:
    empty = runner.invoke(app, ["models", "list"])
    assert empty.exit_code == 0 and "no model versions" in empty.output
    old = _register(cli_registry, make_model, model="ease", metrics={})
    new = _register(cli_registry, make_model, user_count=1234)
    cli_registry.promote(new)
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output
    lines = result.output.splitlines()
    new_line = next(line for line in lines if new in line)
    old_line = next(line for line in lines if old in line)
    assert lines.index(new_line) < lines.index(old_line)  # newest first
    assert "als" in new_line and "1,234" in new_line and "0.2500" in new_line
    assert "production" in new_line
    assert "ease" in old_line and "production" not in old_line
    rows = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert [row["model_version"] for row in rows] == [new, old]
    assert rows[0]["aliases"] == ["production"] and rows[1]["aliases"] == []


def _register_model(registry: ModelRegistry, tmp_path: Path, seed: int) -> str:
    """A real (small) model: promotions load it and ask it for a recommendation."""
    from interaction_data import clustered_log

    from tastebud.data.matrix import MatrixOptions, build_matrix
    from tastebud.models.factors import ALSRecommender

    matrix = build_matrix(clustered_log(seed=seed), MatrixOptions())
    model = ALSRecommender(factors=4, iterations=2, use_gpu=False, random_state=seed).fit(matrix)
    folder = model.save(tmp_path / f"model-{seed}")
    return registry.register(folder, manifest_for()).model_version


def test_show_promote_rollback_gc(cli_registry: ModelRegistry, tmp_path: Path) -> None:
    first, second, third = (_register_model(cli_registry, tmp_path, seed) for seed in range(3))
    result = runner.invoke(app, ["models", "promote", first])
    assert result.exit_code == 0, result.output
    assert f"production -> {first}" in result.output
    result = runner.invoke(app, ["models", "promote", second, "--alias", "canary"])
    assert result.exit_code == 0 and f"canary -> {second}" in result.output
    result = runner.invoke(app, ["models", "promote", "canary"])
    assert result.exit_code == 0 and f"production -> {second} (was {first})" in result.output
    shown = json.loads(runner.invoke(app, ["models", "show", "production"]).stdout)
    assert shown["model_version"] == second
    assert shown["aliases"] == ["canary", "production"]
    assert "state.npz" in shown["files"]
    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 0 and f"production -> {first} (was {second})" in result.output
    assert cli_registry.resolve("production") == first
    dry = runner.invoke(app, ["models", "gc", "--keep", "0", "--dry-run"])
    assert dry.exit_code == 0 and f"would delete {third}" in dry.output
    assert len(cli_registry.list_versions()) == 3
    result = runner.invoke(app, ["models", "gc", "--keep", "0"])
    assert result.exit_code == 0, result.output
    assert f"deleted {third}" in result.output and "kept 2" in result.output
    assert {item.model_version for item in cli_registry.list_versions()} == {first, second}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["models", "show", "staging"], 2, "neither a model version"),
        (["models", "show", "20200101T000000Z-abcdef"], 2, "no model version"),
        (["models", "show", "production"], 2, "points to no version"),
        (["models", "promote", "20200101T000000Z-abcdef"], 2, "no model version"),
        (["models", "promote", "VERSION", "--alias", "stable"], 2, "unknown alias 'stable'"),
        (["models", "rollback"], 1, "no previous version"),
        (["models", "rollback", "--alias", "beta"], 2, "unknown alias"),
        (["models", "gc", "--keep", "-1"], 2, "greater than or equal to 0"),
    ],
)
def test_errors_are_messages_not_tracebacks(
    cli_registry: ModelRegistry,
    make_model: ModelFactory,
    args: list[str],
    code: int,
    message: str,
) -> None:
    version = _register(cli_registry, make_model)
    args = [version if arg == "VERSION" else arg for arg in args]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert cli_registry.aliases() == {}


def test_a_damaged_aliases_file_is_reported(cli_registry: ModelRegistry) -> None:
    cli_registry.artifacts.put_bytes("models/aliases.json", b"{not json")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 1
    assert "aliases.json is invalid" in result.output and "Traceback" not in result.output


def test_an_unusable_artifact_store_is_a_store_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASTEBUD_ARTIFACTS_URL", "nosuchfs://bucket/models")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 3, result.output
    assert "cannot open the artifact store" in result.output
    assert "Traceback" not in result.output


def test_list_shows_validation_metrics_and_the_gate(
    cli_registry: ModelRegistry, make_model: ModelFactory
) -> None:
    """An AutoML version carries its validation NDCG@10, a train-job version its gate
    figures; a version with neither shows '-' (it used to show '-' for everything)."""
    automl = _register(
        cli_registry, make_model, metrics={"cf.validation.ndcg@10": 0.3125,
                                           "cf.validation.recall@10": 0.4}
    )  # fmt: skip
    gated = _register(
        cli_registry,
        make_model,
        metrics={"cf.gate.candidate.ndcg@10": 0.0912, "cf.gate.production.ndcg@10": 0.0884},
    )
    bare = _register(cli_registry, make_model, metrics={})
    result = runner.invoke(app, ["models", "list"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "valid." in result.output and "gate" in result.output
    lines = result.output.splitlines()
    automl_line = next(line for line in lines if automl in line)
    gated_line = next(line for line in lines if gated in line)
    bare_line = next(line for line in lines if bare in line)
    assert "0.3125" in automl_line
    assert "0.091/0.088" in gated_line
    assert bare_line.split()[-3:] == ["-", "-", "-"]
