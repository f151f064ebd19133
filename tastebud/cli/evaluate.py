"""``tastebud evaluate``: split the interactions, train each model on the train part, rank
the whole catalog and report (part of the batch contract, with ``train`` and ``recommend``;
README "Batch CLI")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tastebud.cli.common import console, fail, out, settings_from_context
from tastebud.cli.train import parse_duration, read_log

# The protocols of ``tastebud.evaluation.PROTOCOLS``, named here so that help does not import
# numpy (CLI start-up); tests/test_cli_startup.py checks that they agree.
PROTOCOL_NAMES = (
    "global-temporal",
    "user-temporal",
    "leave-last-one",
    "random-holdout",
    "strong-generalization",
)

EvaluateInteractions = Annotated[
    Path | None,
    typer.Option(help="Interactions file; without it, the configured event store."),
]
ProtocolOption = Annotated[
    str,
    typer.Option(
        help=f"Split protocol: {', '.join(PROTOCOL_NAMES)}; or ratings "
        "(RMSE/MAE of rating predictors on a random split)."
    ),
]
ModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="Models to compare (repeatable): popularity, itemknn, userknn, als, bpr, ease, "
        "mult-vae, two-tower, ncf (these three need tastebud[neural]), "
        "tastebud (default configuration), auto (AutoML on the train part); with "
        "--protocol ratings: biased-mf, svdpp, global-mean, surprise-svd, surprise-svdpp.",
    ),
]
MinRatingOption = Annotated[
    float | None, typer.Option(help="Relevant = test rating >= this (default: liked).")
]
ReportOut = Annotated[Path, typer.Option("--out", help="Folder for report.json/.md/.png.")]


def evaluate_command(
    ctx: typer.Context,
    interactions: EvaluateInteractions = None,
    protocol: ProtocolOption = "user-temporal",
    k: Annotated[int, typer.Option("--k", min=1, help="The K reports lead with.")] = 10,
    models: ModelsOption = None,
    fraction: Annotated[float, typer.Option(help="Held-out fraction.")] = 0.2,
    min_rating: MinRatingOption = None,
    budget: Annotated[str, typer.Option(help="AutoML budget when --model auto.")] = "5m",
    out_dir: ReportOut = Path("evaluation"),
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Split, train each model on the train part, rank the whole catalog, and report."""
    # Imported here, not at the top: numpy, scikit-learn, matplotlib... (CLI start-up).
    from tastebud.data.interactions import InteractionsError  # lazy: CLI start-up
    from tastebud.evaluation import PROTOCOLS  # lazy: CLI start-up
    from tastebud.models.base import ModelError  # lazy: CLI start-up
    from tastebud.training.offline import DEFAULT_MODELS, run_evaluation  # lazy: CLI start-up

    settings = settings_from_context(ctx)
    if protocol == "ratings":
        from tastebud.cli.ratings import evaluate_rating_models  # lazy: keeps CLI start-up light

        if not 0 < fraction < 1:
            raise fail("--fraction must be between 0 and 1")
        log = read_log(settings, interactions)
        evaluate_rating_models(
            settings, log, models=models, fraction=fraction, out_dir=out_dir, seed=seed
        )
        return
    if protocol not in PROTOCOLS:
        raise fail(f"unknown protocol {protocol!r}: use {', '.join(PROTOCOLS)}")
    if not 0 < fraction < 1:
        raise fail("--fraction must be between 0 and 1")
    log = read_log(settings, interactions)
    try:
        report = run_evaluation(
            log,
            protocol,
            models=models or list(DEFAULT_MODELS),
            ks=sorted({5, 10, 20, k}),
            min_rating=min_rating,
            split_options=_split_options(protocol, fraction, seed),
            event_types=settings.events.types,
            budget_seconds=parse_duration(budget),
            random_state=seed,
            on_model=_metrics_printer(k),
        )
    except (InteractionsError, ModelError, ValueError) as error:
        raise fail(escape(str(error))) from None  # plain text, not markup
    out_dir.mkdir(parents=True, exist_ok=True)
    report.main_k = k
    report.to_json(out_dir / "report.json")
    report.to_markdown(out_dir / "report.md")
    report.to_png(out_dir / "report.png")
    out.print(str(out_dir / "report.json"))


def _split_options(protocol: str, fraction: float, seed: int) -> dict:
    """``--fraction`` and ``--seed`` in the words of ``protocol``'s splitter."""
    split_options: dict = {}
    if protocol in ("user-temporal", "random-holdout"):
        split_options["fraction"] = fraction
    elif protocol == "strong-generalization":
        split_options["test_fraction"] = fraction
    elif protocol == "global-temporal":
        split_options["quantile"] = 1 - fraction
    if protocol in ("random-holdout", "strong-generalization"):
        split_options["random_state"] = seed
    return split_options


def _metrics_printer(k: int) -> Callable[[str, dict[str, float]], None]:
    """Prints each model's accuracy at ``k`` as it is evaluated."""

    def show(name: str, metrics: dict[str, float]) -> None:
        nan = float("nan")
        console.print(
            f"  {name:<12} ndcg@{k} {metrics.get(f'ndcg@{k}', nan):.4f}  "
            f"recall@{k} {metrics.get(f'recall@{k}', nan):.4f}  "
            f"coverage@{k} {metrics.get(f'coverage@{k}', nan):.3f}"
        )

    return show
