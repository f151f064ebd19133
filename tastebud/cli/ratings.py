"""The explicit-rating halves of ``train`` and ``evaluate`` (``--objective rating``,
``--protocol ratings``), called from ``cli/train.py`` and ``cli/evaluate.py`` once they
have read the log.

Imported by those commands on use only: it pulls in numpy, the models and the registry.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from tastebud.cli.common import console, fail, out, save_or_register
from tastebud.config import Settings
from tastebud.data.interactions import InteractionLog, InteractionsError
from tastebud.models.base import ModelError
from tastebud.training.pipeline import save_training
from tastebud.training.rating import OUT_OF_SCALE, register_rating, train_rating, within_scale
from tastebud.training.rating_evaluation import DEFAULT_EVALUATION_MODELS, evaluate_ratings


def on_scale(settings: Settings, log: InteractionLog) -> InteractionLog:
    """``log`` without the ratings outside the configured scale, saying how many went."""
    low, high = settings.quality.rating_min, settings.quality.rating_max
    try:
        kept = within_scale(log, low, high)
    except InteractionsError as error:
        raise fail(escape(str(error))) from None
    count = kept.dropped.get(OUT_OF_SCALE, 0) - log.dropped.get(OUT_OF_SCALE, 0)
    if count:
        scale = escape(f"[{low:g}, {high:g}]")
        console.print(
            f"[yellow]dropped[/] {count:,} rows: {OUT_OF_SCALE} (not in {scale}, "
            f"{escape('[quality]')} rating_min..rating_max)"
        )
    return kept


def train_ratings(
    settings: Settings,
    log: InteractionLog,
    *,
    model: str,
    out_dir: Path | None,
    promote: str | None,
    seed: int,
) -> None:
    """Fit a rating predictor, print its validation RMSE/MAE, save or register it."""
    log = on_scale(settings, log)
    try:
        with console.status(f"training {model} on ratings..."):
            training = train_rating(log, model=model, random_state=seed)
    except (InteractionsError, ModelError) as error:
        raise fail(escape(str(error))) from None  # a diverged fit registers nothing
    result = training.result
    metrics = training.metrics
    validation = (
        f"validation RMSE {metrics['rmse']:.4f}, MAE {metrics['mae']:.4f}"
        if metrics
        else "too few ratings for a validation RMSE"
    )
    console.print(
        f"fitted [bold]{model}[/] on {result.matrix.nnz:,} ratings ({result.matrix.shape[0]:,} "
        f"users x {result.matrix.shape[1]:,} items) in {result.timings['fit_seconds']:.1f}s; "
        f"{validation}"
    )
    save_or_register(
        settings,
        out_dir,
        promote,
        save=lambda folder: save_training(result, log, folder),
        register=lambda registry, aliases: register_rating(
            training, log, registry, aliases=aliases
        ),
    )


def evaluate_rating_models(
    settings: Settings,
    log: InteractionLog,
    *,
    models: list[str] | None,
    fraction: float,
    out_dir: Path,
    seed: int,
) -> None:
    """RMSE/MAE of each rating model on one seeded random split; report.json and .md."""

    def show(name: str, metrics: dict[str, float]) -> None:
        console.print(f"  {name:<16} RMSE {metrics['rmse']:.4f}  MAE {metrics['mae']:.4f}")

    log = on_scale(settings, log)
    try:
        report = evaluate_ratings(
            log,
            models or list(DEFAULT_EVALUATION_MODELS),
            fraction=fraction,
            random_state=seed,
            on_model=show,
        )
    except (InteractionsError, ModelError, ValueError) as error:
        raise fail(escape(str(error))) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    report.to_json(out_dir / "report.json")
    report.to_markdown(out_dir / "report.md")
    out.print(str(out_dir / "report.json"))
