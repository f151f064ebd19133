"""``guardrails``: every running experiment's guardrail metrics, judged every
``experiments.guardrails_minutes`` (5 by default) as of the interval's end, and acted on.

A variant that breaches one (``experiments.guardrails.evaluate_guardrails``: a threshold, a
relative degradation the test confirms, or an always-valid test that says worse) is paused
through the experiment store (``pause_variant``, audited as "guardrails job"), so its users
get control within one poll of every worker's watcher, until a person resumes it after a
review (``tastebud experiments resume KEY --variant V --reviewed-by NAME --note ...``).
Each pause alerts once: an error log line, ``tastebud_experiment_guardrail_breaches_total
{experiment,metric}``, and the JSON payload POSTed to ``experiments.webhook_url`` (else the
jobs' ``alert_webhook_url``) through the job alert hook. A paused variant is not judged
again, so it never alerts twice.

Too little data is an outcome, not a failure: an experiment with no exposures yet, a
guardrail whose metric has no data or too few users, or a metric no longer configured is
recorded as ``not_enough_data`` with the reason, in the run history
(``tastebud jobs history guardrails``).
"""

from __future__ import annotations

from typing import Any

from tastebud.experiments.definition import Experiment
from tastebud.experiments.errors import ExperimentError
from tastebud.experiments.guardrails import GuardrailResult, evaluate_guardrails
from tastebud.experiments.metrics import NoExposures
from tastebud.experiments.store import ExperimentStore
from tastebud.experiments.stored import stored_data
from tastebud.jobs.alerts import AlertHook
from tastebud.jobs.base import JobContext
from tastebud.observability import get_logger, metrics

log = get_logger(__name__)
ACTOR = "guardrails job"
BREACHES = metrics.counter(
    "experiment",
    "guardrail_breaches",
    "total",
    "Guardrail breaches that paused a variant, by experiment and metric.",
    labels=("experiment", "metric"),
)


def run(context: JobContext) -> dict[str, Any]:
    """Judge every running experiment with guardrails; pause and alert on a breach."""
    store = ExperimentStore(context.stores.database.sql_backend("experiments"))
    try:
        running = [s.experiment for s in store.list(status="running") if s.experiment.guardrails]
        outcomes: dict[str, dict[str, Any]] = {}
        for experiment in running:
            context.check()  # a timed-out attempt pauses nothing after the fact
            outcomes[experiment.key] = guard(context, store, experiment)
    finally:
        store.close()
    paused = [
        f"{key}:{variant}" for key, outcome in outcomes.items() for variant in outcome["paused"]
    ]
    return {
        "experiments": outcomes,
        "paused": paused,
        "not_enough_data": [
            key for key, outcome in outcomes.items() if outcome["status"] == "not_enough_data"
        ],
    }


def guard(context: JobContext, store: ExperimentStore, experiment: Experiment) -> dict[str, Any]:
    """One experiment: its guardrail metrics' data as of the interval's end, judged, and
    each breaching variant paused (once) and alerted."""
    configured = context.settings.experiments.metrics
    wanted = list(dict.fromkeys(g.metric for g in experiment.guardrails))
    unknown = [name for name in wanted if name not in configured]
    notes = [f"metric {name!r} is not configured ([experiments.metrics])" for name in unknown]
    known = [name for name in wanted if name in configured]
    if not known:
        return _outcome("not_enough_data", [], [], notes)
    try:
        data = stored_data(
            context.settings, context.stores, experiment, now=context.end, metrics=known
        )
    except NoExposures as error:
        return _outcome("not_enough_data", [], [], [*notes, f"{error}: not enough data yet"])
    results = [
        result
        for result in evaluate_guardrails(experiment, data, context.settings.experiments)
        if result.variant not in experiment.paused_variants
    ]
    skipped = sorted(experiment.paused_variants)
    notes += [f"{name} already paused: {experiment.paused_variants[name]}" for name in skipped]
    paused = []
    for variant in dict.fromkeys(r.variant for r in results if r.breached):
        breached = [r for r in results if r.variant == variant and r.breached]
        if _pause(context, store, experiment, variant, breached):
            paused.append(variant)
    if paused:
        status = "breached"
    elif any(result.judged for result in results):
        status = "ok"
    else:
        status = "not_enough_data"
    return _outcome(status, results, paused, notes)


def _outcome(
    status: str, results: list[GuardrailResult], paused: list[str], notes: list[str]
) -> dict[str, Any]:
    return {
        "status": status,
        "paused": paused,
        "guardrails": [result.model_dump(mode="json") for result in results],
        "notes": notes,
    }


def _pause(
    context: JobContext,
    store: ExperimentStore,
    experiment: Experiment,
    variant: str,
    breached: list[GuardrailResult],
) -> bool:
    """Pause ``variant`` for its breaches and alert once; False when the store refused (the
    experiment was stopped or paused meanwhile: nothing to act on)."""
    reason = "guardrail breached: " + "; ".join(f"{r.metric}: {r.reason}" for r in breached)
    try:
        store.pause_variant(experiment.key, variant, reason, actor=ACTOR)
    except ExperimentError as error:
        log.warning(
            "guardrail pause refused", experiment=experiment.key, variant=variant, error=str(error)
        )
        return False
    for result in breached:
        BREACHES.labels(experiment=experiment.key, metric=result.metric).inc()
    payload = _payload(context, experiment, variant, breached)
    log.error("guardrail breached: variant paused", **payload)
    settings = context.settings
    AlertHook(settings.experiments.webhook_url or settings.jobs.alert_webhook_url).send(payload)
    return True


def _payload(
    context: JobContext, experiment: Experiment, variant: str, breached: list[GuardrailResult]
) -> dict[str, Any]:
    return {
        "alert": "guardrail_breach",
        "experiment": experiment.key,
        "variant": variant,
        "action": "paused",
        "metrics": [result.metric for result in breached],
        "breaches": [result.model_dump(mode="json") for result in breached],
        "owner": experiment.owner,
        "run_id": context.run_id,
        "as_of": context.end.isoformat(),
        "resume": (
            f"tastebud experiments resume {experiment.key} --variant {variant} "
            "--reviewed-by NAME --note 'what the review found'"
        ),
    }
