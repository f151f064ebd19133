"""Train end to end: interactions -> matrix -> (AutoML) -> fitted model -> folder or registry.

The CLI's ``train`` and the ``train`` job both call ``train``; the result is a folder that
``Recommender.load`` reads back (model files with checksums) plus ``training.json`` (what
was trained on, the configuration, the search, coverage). Registration goes through the
model registry, whose manifest is written last: a failed or interrupted run leaves the
registry as it was.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from tastebud import __version__
from tastebud.config import EventTypeSpec, default_event_types
from tastebud.data.interactions import InteractionLog, InteractionsError
from tastebud.data.matrix import InteractionMatrix, MatrixCache, MatrixOptions
from tastebud.evaluation import factor_coverage
from tastebud.models.base import Recommender
from tastebud.models.ease import EASERecommender
from tastebud.registry import ModelRegistry, ModelVersion
from tastebud.registry.names import TRAINING_FILE
from tastebud.training.automl import AutoML, BudgetTooSmall, SearchFailed, SearchResult
from tastebud.training.configuration import Configuration, MatrixSource, fit_configuration

# Above this catalog size the default configuration switches from EASE to ALS.
DEFAULT_EASE_MAX_ITEMS = 15_000


def default_configuration(n_items: int) -> Configuration:
    """What ``train`` fits without ``--auto``: EASE (λ = 200, its paper's order of magnitude)
    while the catalog's dense item x item matrix is cheap, implicit ALS above that.

    EASE's matrix is chosen on principle, not fitted to a benchmark: rating strengths and
    single events keep their weight, repeats beyond one event's worth count logarithmically
    (``saturate``; summed repeat plays otherwise drown everything else), and confidences are
    divided by their median (``normalize``), so λ is in units of one typical interaction and
    means the same on pairs, counts, ratings and mixed events. On binary pairs this is plain
    EASE exactly; docs/benchmarks.md has the comparison on every shape."""
    options = MatrixOptions().model_dump()
    if n_items <= DEFAULT_EASE_MAX_ITEMS:
        return Configuration({**options, "transform": "saturate", "normalize": True}, "ease",
                             {"l2": 200.0})  # fmt: skip
    return Configuration(
        {**options, "transform": "log"},
        "als",
        {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15},
    )


@dataclass
class TrainingResult:
    model: Recommender
    matrix: InteractionMatrix
    configuration: Configuration
    search: SearchResult | None
    fallback: str | None
    timings: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)

    def summary(self, log: InteractionLog) -> dict[str, Any]:
        start, end = log.time_range
        return {
            "tastebud_version": __version__,
            "model": self.configuration.model,
            "configuration": self.configuration.to_dict(),
            "fallback": self.fallback,
            "data": {
                "snapshot": log.snapshot,
                "rows": len(log),
                "dropped": log.dropped,
                "ignored_columns": log.ignored_columns,
                "time_range": {"start": start, "end": end},
                "matrix": self.matrix.stats,
            },
            "coverage": self.coverage,
            "timings": self.timings,
            "search": self.search.to_dict() if self.search else None,
        }


def check_trainable(log: InteractionLog) -> None:
    """Refuse data no model can learn from, with a message that says what is missing."""
    if len(log) == 0:
        detail = f" (dropped: {log.dropped})" if log.dropped else ""
        raise InteractionsError(f"no usable interactions{detail}")
    users = len(pc.unique(log.table.column("user_id")))
    items = len(pc.unique(log.table.column("item_id")))
    if users < 2 or items < 2:
        raise InteractionsError(
            f"need at least 2 users and 2 items to learn preferences; got {users} user(s) "
            f"and {items} item(s)"
        )


def train(
    log: InteractionLog,
    *,
    auto: bool = False,
    budget_seconds: float | None = None,
    event_types: dict[str, EventTypeSpec] | None = None,
    configuration: Configuration | None = None,
    random_state: int = 42,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    matrix_cache: MatrixCache | None = None,
    matrix_source: MatrixSource | None = None,
) -> TrainingResult:
    """Fit the default (or given) configuration, or search one with AutoML first; the
    final fit's matrix comes from ``matrix_source`` when given (the Spark engine)."""
    event_types = event_types or default_event_types()
    check_trainable(log)
    timings: dict[str, float] = {}
    search = None
    fallback = None
    n_items = len(pc.unique(log.table.column("item_id")))
    if configuration is None:
        configuration = default_configuration(n_items)
        if auto:
            started = time.monotonic()
            automl = AutoML(
                budget_seconds=budget_seconds or 300.0,
                event_types=event_types,
                random_state=random_state,
                max_ease_items=DEFAULT_EASE_MAX_ITEMS,
                on_trial=on_trial,
            )
            try:
                search = automl.search(log)
                configuration = search.configuration
            except (BudgetTooSmall, SearchFailed, InteractionsError) as error:
                fallback = f"AutoML chose nothing ({error}); fitted the default configuration"
            timings["search_seconds"] = time.monotonic() - started
    started = time.monotonic()
    model, matrix = fit_configuration(log, configuration, event_types, matrix_cache, matrix_source)
    timings["fit_seconds"] = time.monotonic() - started
    result = TrainingResult(model, matrix, configuration, search, fallback, timings)
    result.coverage = coverage_of(model, log)
    return result


def coverage_of(model: Recommender, log: InteractionLog) -> dict[str, float]:
    """Share of active users and items (in the log) that the model has learned state for."""
    factors_users = getattr(model, "user_factors_", None)
    factors_items = getattr(model, "item_factors_", None)
    if isinstance(model, EASERecommender) and len(model.kept_items_) < model.n_items:
        factors_items = np.zeros((model.n_items, 1))
        factors_items[model.kept_items_] = 1.0
    coverage = factor_coverage(
        pc.unique(log.table.column("user_id")).to_pylist(),
        pc.unique(log.table.column("item_id")).to_pylist(),
        model.users_,
        model.items_,
        user_factors=factors_users,
        item_factors=factors_items,
    )
    return coverage.as_metrics()


def embedding_dim(model: Recommender) -> int | None:
    factors = getattr(model, "item_factors_", None)
    return None if factors is None else int(factors.shape[1])


def save_training(result: TrainingResult, log: InteractionLog, folder: Path) -> Path:
    """Write the model and ``training.json`` into a new folder, atomically (a partial
    folder is renamed into place only when complete)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty; choose a new --out")
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        result.model.save(partial)
        summary = result.summary(log)
        (partial / TRAINING_FILE).write_text(json.dumps(summary, indent=2, default=str))
        if result.search is not None:
            write_search_report(result.search, partial)
        if folder.exists():
            folder.rmdir()
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder


def write_search_report(search: SearchResult, folder: Path) -> None:
    """The AutoML search as Markdown and a PNG validation curve (its JSON is in
    training.json)."""
    # lazy: matplotlib loads only when a search report is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = search.to_dict()
    lines = [
        "# AutoML search",
        "",
        f"- budget: {search.budget_seconds:.0f} s, used {search.elapsed_seconds:.0f} s",
        f"- trials: {len(search.trials)} "
        f"({sum(t['state'] == 'complete' for t in search.trials)} complete, "
        f"{sum(t['state'] == 'pruned' for t in search.trials)} pruned)",
        f"- validation: {search.validation}",
        f"- best validation NDCG@10: {search.validation_ndcg:.4f}",
        f"- families skipped: {search.skipped or 'none'}",
        f"- best configuration: `{json.dumps(search.configuration.to_dict(), default=str)}`",
        "",
        "| trial | family | state | validation NDCG@10 | seconds |",
        "|---:|---|---|---:|---:|",
    ]
    for trial in search.trials:
        value = "" if trial["value"] is None else f"{trial['value']:.4f}"
        lines.append(
            f"| {trial['number']} | {trial['family']} | {trial['state']} | {value} | "
            f"{trial['seconds']} |"
        )
    if search.blend:
        lines += ["", f"Blend search: `{json.dumps(search.blend, default=str)}`"]
    (folder / "search.md").write_text("\n".join(lines) + "\n")

    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    numbers = [t["number"] for t in search.trials]
    values = [np.nan if t["value"] is None else t["value"] for t in search.trials]
    colors = ["tab:blue" if t["state"] == "complete" else "tab:gray" for t in search.trials]
    axes.scatter(numbers, values, c=colors, s=12, label="trial (grey: pruned, partial value)")
    best = [np.nan if v is None else v for v in data["curve_best_so_far"]]
    axes.plot(numbers, best, color="tab:red", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("validation NDCG@10")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(folder / "search.png", dpi=100)


def register_training(
    result: TrainingResult,
    log: InteractionLog,
    registry: ModelRegistry,
    *,
    aliases: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> ModelVersion:
    """Save the model into a scratch folder and register it (manifest fields from the run,
    plus ``extra``); the registry writes the manifest last, so a failure registers nothing."""
    manifest = {**manifest_for(result, log), **(extra or {})}
    gate = manifest.get("gate")
    if isinstance(gate, dict):  # the train job's quality gate, as figures `models list` shows
        manifest["metrics"] = {**manifest["metrics"], **gate_metrics(gate)}
    with tempfile.TemporaryDirectory(prefix="tastebud-train-") as scratch:
        folder = save_training(result, log, Path(scratch) / "model")
        return registry.register(folder, manifest, aliases=aliases)


def gate_metrics(gate: dict[str, Any]) -> dict[str, float]:
    """The gate's NDCG@10 of the candidate and of production, fitted on the same data."""
    return {
        f"cf.gate.{side}.ndcg@10": float(gate[side])
        for side in ("candidate", "production")
        if isinstance(gate.get(side), int | float)
    }


def manifest_for(result: TrainingResult, log: InteractionLog) -> dict[str, Any]:
    """The registry manifest fields the training run knows."""
    start, end = log.time_range
    metrics: dict[str, float] = {f"cf.coverage.{k}": v for k, v in result.coverage.items()}
    if result.search is not None:
        for name, value in result.search.validation_metrics.items():
            metrics[f"cf.validation.{name}"] = value
        metrics["cf.validation.ndcg@10"] = result.search.validation_ndcg
    return {
        "model": result.configuration.model,
        "user_count": len(result.model.users_),
        "item_count": len(result.model.items_),
        "embedding_dim": embedding_dim(result.model),
        "params": result.configuration.to_dict(),
        "metrics": metrics,
        "snapshot": log.snapshot,
        "time_range": {"start": start, "end": end},
    }
