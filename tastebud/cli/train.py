"""``tastebud train`` and ``tastebud evaluate`` (with ``recommend``, in ``recommend.py``): the
batch contract.

Outside evaluation drives tastebud through these three commands, so their names, options
and file formats are stable (see README "Batch CLI").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from tastebud.cli.common import (
    EXIT_STORE,
    console,
    fail,
    out,
    settings_from_context,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.interactions import InteractionLog

# The protocols of ``tastebud.evaluation.PROTOCOLS``, named here so that help does not import
# numpy (CLI start-up); tests/test_cli_startup.py checks that they agree.
PROTOCOL_NAMES = (
    "global-temporal",
    "user-temporal",
    "leave-last-one",
    "random-holdout",
    "strong-generalization",
)

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds."""
    match = DURATION.match(text)
    if not match:
        raise fail(f"invalid duration {text!r}: use e.g. 90s, 10m or 1h")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]


def _read_log(settings: Settings, interactions: Path | None) -> InteractionLog:
    """The interactions of ``--interactions FILE``, or of the event store; what was dropped
    or ignored is printed."""
    # Imported here, not at the top: numpy and pyarrow (CLI start-up).
    from tastebud.data.interactions import (
        InteractionsError,
        read_event_store,
        read_interactions_file,
    )

    try:
        if interactions is not None:
            log = read_interactions_file(interactions)
        else:
            with stores_for(settings) as stores:
                log = read_event_store(stores.events)
    except InteractionsError as error:
        raise fail(str(error)) from None
    _report_log(log)
    return log


def _report_log(log: InteractionLog) -> None:
    console.print(f"read {len(log):,} interactions (snapshot {log.snapshot})")
    for reason, count in log.dropped.items():
        console.print(f"[yellow]dropped[/] {count:,} rows: {reason}")
    if log.ignored_columns:
        console.print(f"[yellow]ignored columns:[/] {', '.join(log.ignored_columns)}")


def train_command(
    ctx: typer.Context,
    interactions: Annotated[
        Path | None,
        typer.Option(
            help="CSV/TSV/Parquet with user_id,item_id[,rating,weight,event_type,timestamp]; "
            "without it, the configured event store."
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write the model to this new folder instead of registering."),
    ] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Search model, parameters and blend with AutoML.")
    ] = False,
    budget: Annotated[str, typer.Option(help="AutoML time budget, e.g. 90s, 10m, 1h.")] = "5m",
    promote: Annotated[
        str | None,
        typer.Option(help="After registering, point this alias (production/canary/shadow) at it."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed for splits and searches.")] = 42,
) -> None:
    """Train a model (the default configuration, or AutoML's best with --auto)."""
    # Imported here, not at the top: numpy, implicit, Optuna... (CLI start-up).
    from tastebud.data.interactions import InteractionsError
    from tastebud.data.matrix import MatrixCache
    from tastebud.models.base import ModelError
    from tastebud.training.pipeline import register_training, save_training, train

    settings = settings_from_context(ctx)
    budget_seconds = parse_duration(budget)
    if out_dir is not None and out_dir.exists() and any(out_dir.iterdir()):
        raise fail(f"{out_dir} exists and is not empty; choose a new --out")
    log = _read_log(settings, interactions)

    def show_trial(trial: dict) -> None:
        value = "-" if trial["value"] is None else f"{trial['value']:.4f}"
        console.print(
            f"  trial {trial['number']:>3} {trial['family'] or '?':<10} {trial['state']:<8} "
            f"ndcg@10 {value}  ({trial['seconds']}s)"
        )

    try:
        with console.status("training..." if not auto else f"AutoML search ({budget})..."):
            result = train(
                log,
                auto=auto,
                budget_seconds=budget_seconds,
                event_types=settings.events.types,
                random_state=seed,
                on_trial=show_trial if auto else None,
                matrix_cache=MatrixCache(settings.home / "cache" / "matrices"),
            )
    except (InteractionsError, ModelError) as error:
        raise fail(escape(str(error))) from None  # plain text, not markup
    if result.fallback:
        console.print(f"[yellow]warning:[/] {result.fallback}")
    if result.search is not None:
        console.print(
            f"AutoML: {len(result.search.trials)} trials, best validation NDCG@10 "
            f"{result.search.validation_ndcg:.4f}"
        )
        reasons: dict[str, list[str]] = {}
        for family, reason in result.search.skipped.items():
            reasons.setdefault(reason, []).append(family)
        for reason, families in reasons.items():
            console.print(f"AutoML skipped {', '.join(families)}: {escape(reason)}")
    console.print(
        f"fitted [bold]{result.configuration.model}[/] on {result.matrix.shape[0]:,} users x "
        f"{result.matrix.shape[1]:,} items in {result.timings['fit_seconds']:.1f}s"
    )
    if out_dir is not None:
        save_training(result, log, out_dir)
        out.print(str(out_dir))
        return
    from tastebud.registry import RegistryError, open_registry

    with stores_for(settings) as stores:
        registry = open_registry(settings, stores.artifacts)
        try:
            version = register_training(result, log, registry, aliases=[promote] if promote else [])
        except RegistryError as error:
            raise fail(str(error), EXIT_STORE) from None
    out.print(version.model_version)


def evaluate_command(
    ctx: typer.Context,
    interactions: Annotated[
        Path | None,
        typer.Option(help="Interactions file; without it, the configured event store."),
    ] = None,
    protocol: Annotated[
        str, typer.Option(help=f"Split protocol: {', '.join(PROTOCOL_NAMES)}.")
    ] = "user-temporal",
    k: Annotated[int, typer.Option("--k", min=1, help="The K reports lead with.")] = 10,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Models to compare (repeatable): popularity, itemknn, userknn, als, bpr, ease, "
            "mult-vae, two-tower, ncf (these three need tastebud[neural]), "
            "tastebud (default configuration), auto (AutoML on the train part).",
        ),
    ] = None,
    fraction: Annotated[float, typer.Option(help="Held-out fraction.")] = 0.2,
    min_rating: Annotated[
        float | None, typer.Option(help="Relevant = test rating >= this (default: liked).")
    ] = None,
    budget: Annotated[str, typer.Option(help="AutoML budget when --model auto.")] = "5m",
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.json/.md/.png.")] = Path(
        "evaluation"
    ),
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Split, train each model on the train part, rank the whole catalog, and report."""
    # Imported here, not at the top: numpy, scikit-learn, matplotlib... (CLI start-up).
    import numpy as np

    from tastebud.data.interactions import InteractionsError
    from tastebud.evaluation import PROTOCOLS
    from tastebud.models.base import ModelError
    from tastebud.training.offline import DEFAULT_MODELS, run_evaluation

    settings = settings_from_context(ctx)
    if protocol not in PROTOCOLS:
        raise fail(f"unknown protocol {protocol!r}: use {', '.join(PROTOCOLS)}")
    if not 0 < fraction < 1:
        raise fail("--fraction must be between 0 and 1")
    log = _read_log(settings, interactions)
    split_options: dict = {}
    if protocol in ("user-temporal", "random-holdout"):
        split_options["fraction"] = fraction
    elif protocol == "strong-generalization":
        split_options["test_fraction"] = fraction
    elif protocol == "global-temporal":
        split_options["quantile"] = 1 - fraction
    if protocol in ("random-holdout", "strong-generalization"):
        split_options["random_state"] = seed
    ks = sorted({5, 10, 20, k})

    def show(name: str, metrics: dict[str, float]) -> None:
        console.print(
            f"  {name:<12} ndcg@{k} {metrics.get(f'ndcg@{k}', np.nan):.4f}  "
            f"recall@{k} {metrics.get(f'recall@{k}', np.nan):.4f}  "
            f"coverage@{k} {metrics.get(f'coverage@{k}', np.nan):.3f}"
        )

    try:
        report = run_evaluation(
            log,
            protocol,
            models=models or list(DEFAULT_MODELS),
            ks=ks,
            min_rating=min_rating,
            split_options=split_options,
            event_types=settings.events.types,
            budget_seconds=parse_duration(budget),
            random_state=seed,
            on_model=show,
        )
    except (InteractionsError, ModelError, ValueError) as error:
        raise fail(escape(str(error))) from None  # plain text, not markup
    out_dir.mkdir(parents=True, exist_ok=True)
    report.main_k = k
    report.to_json(out_dir / "report.json")
    report.to_markdown(out_dir / "report.md")
    report.to_png(out_dir / "report.png")
    out.print(str(out_dir / "report.json"))
