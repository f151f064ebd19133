"""``tastebud models``: list, inspect, promote, roll back, roll out (``cli/rollout.py``) and
garbage-collect model versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tastebud.cli.common import EXIT_STORE, EXIT_USAGE, fail, out, settings_from_context
from tastebud.cli.rollout import rollout_command
from tastebud.registry.names import ALIASES

if TYPE_CHECKING:
    from tastebud.registry import ModelRegistry

app = typer.Typer(help="Registered model versions and their aliases.", no_args_is_help=True)

app.command("rollout")(rollout_command)

EXIT_REGISTRY = 1
KEY_METRIC = "cf.offline.ndcg@10"
AliasOption = Annotated[
    str, typer.Option("--alias", help=f"Alias to change: {', '.join(ALIASES)}.")
]


@contextmanager
def registry_for(ctx: typer.Context) -> Iterator[ModelRegistry]:
    """The configured registry; its errors become a message and an exit code, never a
    traceback: 2 for a bad ref or alias, 3 for an unreachable store, 1 otherwise."""
    # Imported here, not at the top: the registry brings fsspec and the stores (CLI
    # start-up).
    from tastebud.registry import (  # lazy: CLI start-up
        RegistryError,
        UnknownAlias,
        VersionNotFound,
        open_registry,
    )
    from tastebud.stores import StoreError  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    try:
        registry = open_registry(settings)
    except RegistryError as error:
        raise fail(str(error), EXIT_STORE) from None
    try:
        yield registry
    except (UnknownAlias, VersionNotFound) as error:
        raise fail(str(error), EXIT_USAGE) from None
    except RegistryError as error:
        raise fail(str(error), EXIT_REGISTRY) from None
    except (StoreError, OSError) as error:
        raise fail(f"artifact store: {error}", EXIT_STORE) from None


VALIDATION_METRIC = "cf.validation.ndcg@10"
GATE_METRICS = ("cf.gate.candidate.ndcg@10", "cf.gate.production.ndcg@10")


def _format_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _format_gate(metrics: dict[str, float | None]) -> str:
    """The train job's gate: the candidate's NDCG@10 against production's, same data."""
    candidate, production = (metrics.get(name) for name in GATE_METRICS)
    if candidate is None and production is None:
        return "-"
    low = "-" if candidate is None else f"{candidate:.3f}"
    high = "-" if production is None else f"{production:.3f}"
    return f"{low}/{high}"


@app.command("list")
def list_versions(
    ctx: typer.Context,
    metric: Annotated[str, typer.Option(help="Metric shown in the table.")] = KEY_METRIC,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Registered versions, newest first, with their metrics and aliases.

    Columns: the chosen metric (offline evaluation), AutoML's validation NDCG@10
    (``valid.``), and the train job's quality gate (``gate``: candidate/production NDCG@10
    fitted and judged on the same held-out data); the last two when a version has them."""
    with registry_for(ctx) as registry:
        versions = registry.list_versions()
        aliases = registry.aliases()
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    if as_json:
        rows = [
            {**item.model_dump(mode="json"), "aliases": by_version.get(item.model_version, [])}
            for item in versions
        ]
        out.print_json(json.dumps(rows))
        return
    if not versions:
        out.print("no model versions registered yet")
        return
    # Sized to fit 80 columns: ids never wrap, the date and aliases may.
    table = Table(box=None, collapse_padding=True, pad_edge=False, header_style="bold")
    table.add_column("version", no_wrap=True)
    table.add_column("created", min_width=10)
    table.add_column("model", overflow="fold")
    table.add_column("users", justify="right", no_wrap=True)
    table.add_column("items", justify="right", no_wrap=True)
    table.add_column(metric.removeprefix("cf.offline."), justify="right", no_wrap=True)
    # Validation and gate columns only when some version has the figures (80 columns).
    validated = any(VALIDATION_METRIC in item.metrics for item in versions)
    gated = any(name in item.metrics for item in versions for name in GATE_METRICS)
    if validated:
        table.add_column("valid.", justify="right", no_wrap=True)
    if gated:
        table.add_column("gate", justify="right", no_wrap=True)
    table.add_column("aliases", min_width=10, overflow="fold")
    for item in versions:
        cells = [
            item.model_version,
            item.created_at.strftime("%Y-%m-%d %H:%M"),
            item.model,
            f"{item.user_count:,}",
            f"{item.item_count:,}",
            _format_metric(item.metrics.get(metric)),
        ]
        if validated:
            cells.append(_format_metric(item.metrics.get(VALIDATION_METRIC)))
        if gated:
            cells.append(_format_gate(item.metrics))
        table.add_row(*cells, " ".join(sorted(by_version.get(item.model_version, []))))
    out.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A version or an alias.")],
) -> None:
    """Print a version's manifest as JSON, with the aliases pointing at it."""
    with registry_for(ctx) as registry:
        manifest = registry.get(ref)
        aliases = registry.aliases()
    document = manifest.model_dump(mode="json")
    document["aliases"] = sorted(a for a, v in aliases.items() if v == manifest.model_version)
    out.print_json(json.dumps(document))


@contextmanager
def _refusal(alias: str, before: str | None) -> Iterator[None]:
    """A version that fails validation: say so, and that the alias did not move."""
    from tastebud.registry import ModelLoadError  # lazy: CLI start-up

    try:
        yield
    except ModelLoadError as error:
        where = f"{alias} still points to {before}" if before else f"{alias} is unchanged"
        raise fail(f"refused: {error.reason} ({where})", EXIT_REGISTRY) from None


def _validation() -> dict[str, Any]:
    """How a version is checked before an alias moves to it: loaded as a recommender (its
    arrays' shapes checked) and asked for one recommendation."""
    # Imported here, not at the top: numpy, implicit (CLI start-up).
    from tastebud.cli.recommend import smoke_recommendation  # lazy: CLI start-up
    from tastebud.models.base import Recommender  # lazy: CLI start-up

    return {"loader": Recommender.load, "smoke": smoke_recommendation}


@app.command("promote")
def promote(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A version, or an alias whose version to promote.")],
    alias: AliasOption = "production",
) -> None:
    """Point an alias at a version (the alias remembers where it pointed, for rollback),
    once the version is validated: checksums, loaded (shapes checked), one smoke
    recommendation. A version that would not serve is refused (exit 1), the alias left."""
    with registry_for(ctx) as registry:
        before = registry.aliases().get(alias)
        with _refusal(alias, before):
            manifest = registry.promote(ref, alias, **_validation())
    was = f" (was {before})" if before and before != manifest.model_version else ""
    out.print(f"{alias} -> {manifest.model_version}{was}")


@app.command("rollback")
def rollback(ctx: typer.Context, alias: AliasOption = "production") -> None:
    """Point an alias back at the version it pointed to before its last change, once that
    version is validated as `promote` does (refused with exit 1 if it would not serve)."""
    with registry_for(ctx) as registry:
        before = registry.aliases().get(alias)
        with _refusal(alias, before):
            manifest = registry.rollback(alias, **_validation())
    out.print(f"{alias} -> {manifest.model_version} (was {before})")


@app.command("gc")
def gc(
    ctx: typer.Context,
    keep: Annotated[int, typer.Option(min=0, help="Newest versions to keep.")] = 5,
    dry_run: Annotated[bool, typer.Option(help="Only show what would be deleted.")] = False,
) -> None:
    """Delete old versions; never one an alias points to or recently pointed to."""
    with registry_for(ctx) as registry:
        result = registry.gc(keep, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for version in result.deleted:
        out.print(f"{verb} {version}")
    for version in result.partial:
        out.print(f"{verb} {version} (never completed)")
    out.print(
        f"{verb} {len(result.deleted)} version(s) and {len(result.partial)} incomplete; "
        f"kept {len(result.kept)}"
    )
