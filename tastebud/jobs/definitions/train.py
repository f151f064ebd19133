"""``train``: daily CF training that only replaces production when it is at least as good.

The run reads every event before its interval's end, fits a candidate (AutoML within
``jobs.train_budget_seconds``, or the default configuration), and gates it: both the
candidate's configuration and production's are fitted on the same data with each user's
latest ``train_gate_fraction`` held out, and judged by NDCG@10 on it. Comparing recipes on
identical data is fair; comparing the live production model on events it was trained on
would not be. The candidate is refitted on all the data and registered either way (so it
can be inspected); it is promoted to ``production`` only when it passes. A rerun of the same
interval over the same events reuses the version it registered. Before training, the
data-quality checks run (``definitions/quality.py``, ``[quality] gate_train``): a failed
critical check refuses the run, and the production model keeps serving.
"""

from __future__ import annotations

from typing import Any

from tastebud.data.interactions import InteractionLog, from_table, read_event_store
from tastebud.engines import engine_name
from tastebud.evaluation import make_splitter
from tastebud.jobs.base import EmptyWindow, JobContext
from tastebud.jobs.definitions.common import engine, source
from tastebud.jobs.definitions.quality import gate_training
from tastebud.registry import RegistryError, open_registry
from tastebud.stores import EventQuery
from tastebud.training.configuration import Configuration, MatrixSource, fit_configuration
from tastebud.training.holdout import Holdout
from tastebud.training.pipeline import check_trainable, register_training, train


def gate_scores(
    log: InteractionLog, candidate: Configuration, production: Configuration, context: JobContext
) -> dict[str, float]:
    """NDCG@10 of both recipes fitted on the same training part of ``log``."""
    fraction = context.settings.jobs.train_gate_fraction
    split = make_splitter("user-temporal", fraction=fraction)(log.table)
    train_part = from_table(split.train, f"{log.snapshot}:gate")
    scores = {}
    for name, configuration in (("candidate", candidate), ("production", production)):
        model, _ = fit_configuration(train_part, configuration, context.settings.events.types)
        holdout = Holdout.build(model, split.test, context.settings.events.types)
        scores[name] = holdout.ndcg(model, 10) if len(holdout) else float("nan")
    return scores


def engine_matrix(context: JobContext) -> MatrixSource | None:
    """On the Spark engine, the final fit's matrix built there (``interaction_matrix``,
    equal to ``build_matrix`` of the same events); None: from the log, here. The search and
    the gate still read the log's rows (splits need them)."""
    if engine_name(context.settings, context.job_name) != "spark":
        return None
    chosen, events, types = engine(context), source(context), context.settings.events.types
    return lambda options: chosen.interaction_matrix(
        events, context.end, options=options, event_types=types
    )


def run(context: JobContext) -> dict[str, Any]:
    settings = context.settings
    log = read_event_store(context.stores.events, EventQuery(end=context.end))
    if len(log) == 0:
        raise EmptyWindow(f"no events before {context.end.isoformat()}: nothing to train on")
    check_trainable(log)
    registry = open_registry(settings, context.stores.artifacts)
    interval_end = context.end.isoformat()
    for version in registry.list_versions():
        extra = version.model_dump()
        if extra.get("interval_end") == interval_end and extra.get("rows") == len(log):
            return {"version": version.model_version, "reused": True}

    try:
        current = registry.get("production")
    except RegistryError:
        current = None
    quality = None
    if settings.quality.gate_train:
        quality = gate_training(context, current.model_version if current else None)

    result = train(
        log,
        auto=settings.jobs.train_auto,
        budget_seconds=settings.jobs.train_budget_seconds,
        event_types=settings.events.types,
        matrix_source=engine_matrix(context),
    )
    outcome: dict[str, Any] = {"model": result.configuration.model, "rows": len(log)}
    if result.fallback:
        outcome["fallback"] = result.fallback
    if quality is not None:
        outcome["quality"] = {"run_id": quality["run_id"], "status": quality["status"]}
    promote = True
    if current is not None and isinstance(current.params, dict) and "model" in current.params:
        production = Configuration(**current.params)
        scores = gate_scores(log, result.configuration, production, context)
        outcome["gate"] = {**scores, "production_version": current.model_version}
        floor = scores["production"] * (1 - settings.jobs.train_gate_tolerance)
        promote = not scores["candidate"] < floor  # NaN (no holdout) promotes
    context.check()
    extra = {"interval_end": interval_end, "rows": len(log), "gate": outcome.get("gate")}
    version = register_training(result, log, registry, extra=extra)
    outcome["version"] = version.model_version
    if promote:
        context.check()
        registry.promote(version.model_version, "production")
    outcome["promoted"] = promote
    return outcome
