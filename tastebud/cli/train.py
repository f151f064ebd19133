"""``tastebud train`` (with ``evaluate`` in ``evaluate.py`` and ``recommend`` in
``recommend.py``): the batch contract.

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
    save_or_register,
    settings_from_context,
    stores_for,
)

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.data.interactions import InteractionLog
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.training.configuration import Configuration, MatrixSource
    from tastebud.training.pipeline import TrainingResult

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds."""
    match = DURATION.match(text)
    if not match:
        raise fail(f"invalid duration {text!r}: use e.g. 90s, 10m or 1h")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]


def read_log(settings: Settings, interactions: Path | None) -> InteractionLog:
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


TrainInteractions = Annotated[
    Path | None,
    typer.Option(
        help="CSV/TSV/Parquet with user_id,item_id[,rating,weight,event_type,timestamp]; "
        "without it, the configured event store."
    ),
]
TrainOut = Annotated[
    Path | None,
    typer.Option("--out", help="Write the model to this new folder instead of registering."),
]
AutoOption = Annotated[
    bool, typer.Option("--auto", help="Search model, parameters and blend with AutoML.")
]
PromoteOption = Annotated[
    str | None,
    typer.Option(help="After registering, point this alias (production/canary/shadow) at it."),
]
ObjectiveOption = Annotated[
    str,
    typer.Option(
        help="ranking (implicit preferences) or rating (predict explicit ratings; needs "
        "a rating column)."
    ),
]
RatingModelOption = Annotated[
    str,
    typer.Option(
        help="With --objective rating: svdpp, biased-mf, knn-baseline or rating-ensemble "
        "(a learned blend of the three; slowest, most accurate)."
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        help="Where the training matrix is built: local, or spark (on spark_master, from "
        "the event store; docs/spark.md)."
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Fit this model family at its defaults on the default matrix (e.g. als, "
        "mllib-als: Spark MLlib's ALS) instead of the default configuration.",
    ),
]


def train_command(
    ctx: typer.Context,
    interactions: TrainInteractions = None,
    out_dir: TrainOut = None,
    auto: AutoOption = False,
    budget: Annotated[str, typer.Option(help="AutoML time budget, e.g. 90s, 10m, 1h.")] = "5m",
    promote: PromoteOption = None,
    seed: Annotated[int, typer.Option(help="Random seed for splits and searches.")] = 42,
    objective: ObjectiveOption = "ranking",
    rating_model: RatingModelOption = "svdpp",
    engine: EngineOption = "local",
    model: ModelOption = None,
) -> None:
    """Train a model (the default configuration, a --model family, or AutoML's best)."""
    # Imported here, not at the top: numpy, implicit, Optuna... (CLI start-up).
    from tastebud.training.pipeline import (  # lazy: CLI start-up
        register_training,
        save_training,
    )

    settings = settings_from_context(ctx)
    budget_seconds = parse_duration(budget)
    _check_train_options(interactions, out_dir, auto, objective, engine, model)
    if engine == "spark":
        log, matrix_source = _spark_matrix(settings)
    else:
        log, matrix_source = read_log(settings, interactions), None
    if objective == "rating":
        from tastebud.cli.ratings import train_ratings  # lazy: keeps CLI start-up light

        train_ratings(settings, log, model=rating_model, out_dir=out_dir, promote=promote,
                      seed=seed)  # fmt: skip
        return
    with console.status("training..." if not auto else f"AutoML search ({budget})..."):
        result = _fit(settings, log, matrix_source, auto, budget_seconds, seed, model)
    _report_training(result)
    save_or_register(
        settings,
        out_dir,
        promote,
        save=lambda folder: save_training(result, log, folder),
        register=lambda registry, aliases: register_training(
            result, log, registry, aliases=aliases
        ),
    )


def _check_train_options(
    interactions: Path | None,
    out_dir: Path | None,
    auto: bool,
    objective: str,
    engine: str,
    model: str | None,
) -> None:
    """Refuse, before anything is read, options that cannot go together."""
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


def _fit(
    settings: Settings,
    log: InteractionLog,
    matrix_source: MatrixSource | None,
    auto: bool,
    budget_seconds: float,
    seed: int,
    model: str | None,
) -> TrainingResult:
    """Train the default configuration, the ``--model`` family or AutoML's best (printing
    each AutoML trial); a training error is a clean CLI failure."""
    # lazy: CLI start-up
    from tastebud.data.interactions import InteractionsError
    from tastebud.data.matrix import MatrixCache
    from tastebud.engines import EngineError
    from tastebud.models.base import ModelError
    from tastebud.training.pipeline import train

    try:
        return train(
            log,
            auto=auto,
            budget_seconds=budget_seconds,
            event_types=settings.events.types,
            random_state=seed,
            on_trial=_show_trial if auto else None,
            matrix_cache=MatrixCache(settings.home / "cache" / "matrices"),
            matrix_source=matrix_source,
            configuration=_family(log, model) if model else None,
        )
    except (InteractionsError, ModelError, EngineError) as error:
        raise fail(escape(str(error))) from None  # plain text, not markup


def _show_trial(trial: dict) -> None:
    value = "-" if trial["value"] is None else f"{trial['value']:.4f}"
    console.print(
        f"  trial {trial['number']:>3} {trial['family'] or '?':<10} {trial['state']:<8} "
        f"ndcg@10 {value}  ({trial['seconds']}s)"
    )


def _report_training(result: TrainingResult) -> None:
    """What was fitted: a fallback warning, the AutoML summary, the model and its matrix."""
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
