"""``tastebud train`` and ``tastebud evaluate`` (with ``recommend``, in ``recommend.py``): the
batch contract.

Outside evaluation drives tastebud through these three commands, so their names, options
and file formats are stable (see README "Batch CLI").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from tastebud.cli.common import (
    console,
    fail,
    out,
    save_or_register,
    settings_from_context,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.interactions import InteractionLog
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.training.configuration import Configuration, MatrixSource

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
    from tastebud.data.interactions import (  # lazy: CLI start-up
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


def _spark_matrix(settings: Settings) -> tuple[InteractionLog, MatrixSource]:
    """The event store's log up to now, and the matrix of the same events built on Spark
    (the log's rows still feed the checks, AutoML's splits and the summary)."""
    # Imported here, not at the top: numpy and pyarrow (CLI start-up).
    from tastebud.data.interactions import InteractionsError, read_event_store  # lazy: CLI start-up
    from tastebud.engines import EngineError, EventSource, open_engine  # lazy: CLI start-up
    from tastebud.stores import EventQuery  # lazy: CLI start-up

    end = datetime.now(UTC)
    try:
        engine = open_engine(settings, "spark")
        with stores_for(settings) as stores:
            log = read_event_store(stores.events, EventQuery(end=end))
    except (InteractionsError, EngineError) as error:
        raise fail(escape(str(error))) from None
    _report_log(log)

    def source(options: MatrixOptions) -> InteractionMatrix:
        with stores_for(settings) as stores:
            return engine.interaction_matrix(
                EventSource(stores.events), end, options=options, event_types=settings.events.types
            )

    return log, source


def _family(log: InteractionLog, model: str) -> Configuration:
    """``model`` at its default parameters on the default configuration's matrix."""
    import pyarrow.compute as pc  # lazy: pyarrow (CLI start-up)

    from tastebud.models import make_model  # lazy: CLI start-up
    from tastebud.training.configuration import Configuration  # lazy: CLI start-up
    from tastebud.training.pipeline import default_configuration  # lazy: CLI start-up

    make_model(model)  # an unknown family: ModelError, before anything is read or fitted
    base = default_configuration(len(pc.unique(log.table.column("item_id"))))
    return Configuration(base.matrix, model, {})


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
    objective: Annotated[
        str,
        typer.Option(
            help="ranking (implicit preferences) or rating (predict explicit ratings; needs "
            "a rating column)."
        ),
    ] = "ranking",
    rating_model: Annotated[
        str,
        typer.Option(
            help="With --objective rating: svdpp, biased-mf, knn-baseline or rating-ensemble "
            "(a learned blend of the three; slowest, most accurate)."
        ),
    ] = "svdpp",
    engine: Annotated[
        str,
        typer.Option(
            help="Where the training matrix is built: local, or spark (on spark_master, from "
            "the event store; docs/spark.md)."
        ),
    ] = "local",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Fit this model family at its defaults on the default matrix (e.g. als, "
            "mllib-als: Spark MLlib's ALS) instead of the default configuration.",
        ),
    ] = None,
) -> None:
    """Train a model (the default configuration, a --model family, or AutoML's best)."""
    # Imported here, not at the top: numpy, implicit, Optuna... (CLI start-up).
    from tastebud.data.interactions import InteractionsError  # lazy: CLI start-up
    from tastebud.data.matrix import MatrixCache  # lazy: CLI start-up
    from tastebud.engines import EngineError  # lazy: CLI start-up
    from tastebud.models.base import ModelError  # lazy: CLI start-up
    from tastebud.training.pipeline import (  # lazy: CLI start-up
        register_training,
        save_training,
        train,
    )

    settings = settings_from_context(ctx)
    budget_seconds = parse_duration(budget)
    if out_dir is not None and out_dir.exists() and any(out_dir.iterdir()):
        raise fail(f"{out_dir} exists and is not empty; choose a new --out")
    if objective not in ("ranking", "rating"):
        raise fail(f"unknown objective {objective!r}: use ranking or rating")
    if objective == "rating" and auto:
        raise fail("--auto searches ranking models; --objective rating fits --rating-model")
    if objective == "rating" and (engine != "local" or model is not None):
        raise fail("--objective rating fits --rating-model on the local engine")
    if engine not in ("local", "spark"):
        raise fail(f"--engine must be local or spark, not {engine!r}")
    if auto and model is not None:
        raise fail("--auto searches the model itself: give --auto or --model, not both")
    if engine == "spark" and interactions is not None:
        raise fail("--engine spark builds the matrix from the event store: drop --interactions")
    if engine == "spark":
        log, matrix_source = _spark_matrix(settings)
    else:
        log, matrix_source = _read_log(settings, interactions), None
    if objective == "rating":
        from tastebud.cli.ratings import train_ratings  # lazy: keeps CLI start-up light

        train_ratings(settings, log, model=rating_model, out_dir=out_dir, promote=promote,
                      seed=seed)  # fmt: skip
        return

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
                matrix_source=matrix_source,
                configuration=_family(log, model) if model else None,
            )
    except (InteractionsError, ModelError, EngineError) as error:
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
    save_or_register(
        settings,
        out_dir,
        promote,
        save=lambda folder: save_training(result, log, folder),
        register=lambda registry, aliases: register_training(
            result, log, registry, aliases=aliases
        ),
    )


def evaluate_command(
    ctx: typer.Context,
    interactions: Annotated[
        Path | None,
        typer.Option(help="Interactions file; without it, the configured event store."),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help=f"Split protocol: {', '.join(PROTOCOL_NAMES)}; or ratings "
            "(RMSE/MAE of rating predictors on a random split)."
        ),
    ] = "user-temporal",
    k: Annotated[int, typer.Option("--k", min=1, help="The K reports lead with.")] = 10,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Models to compare (repeatable): popularity, itemknn, userknn, als, bpr, ease, "
            "mult-vae, two-tower, ncf (these three need tastebud[neural]), "
            "tastebud (default configuration), auto (AutoML on the train part); with "
            "--protocol ratings: biased-mf, svdpp, global-mean, surprise-svd, surprise-svdpp.",
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
    import numpy as np  # lazy: CLI start-up

    from tastebud.data.interactions import InteractionsError  # lazy: CLI start-up
    from tastebud.evaluation import PROTOCOLS  # lazy: CLI start-up
    from tastebud.models.base import ModelError  # lazy: CLI start-up
    from tastebud.training.offline import DEFAULT_MODELS, run_evaluation  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    if protocol == "ratings":
        from tastebud.cli.ratings import evaluate_rating_models  # lazy: keeps CLI start-up light

        if not 0 < fraction < 1:
            raise fail("--fraction must be between 0 and 1")
        log = _read_log(settings, interactions)
        evaluate_rating_models(log, models=models, fraction=fraction, out_dir=out_dir, seed=seed)
        return
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
