"""``rollout``: every few minutes, one look at each canary rollout still going
(``tastebud.experiments.rollout.tick``): roll back on a guardrail breach, step up when the
step's time has passed and the guardrails hold, promote after the last step.

A rollback alerts through the job alert hook (an error log line, and the webhook of
``[jobs] alert_webhook_url``); docs/operations.md has the runbook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tastebud.config import Settings
from tastebud.experiments import rollout
from tastebud.experiments.definition import Experiment
from tastebud.experiments.samples import ExperimentData
from tastebud.experiments.store import ExperimentStore
from tastebud.experiments.stored import stored_data
from tastebud.jobs.alerts import AlertHook
from tastebud.jobs.base import JobContext
from tastebud.observability import get_logger
from tastebud.registry.registry import open_registry
from tastebud.stores import Stores

log = get_logger(__name__)


def alert_hook(settings: Settings) -> rollout.Alert:
    """A rollback's alert: an error log line always, the webhook when configured."""
    hook = AlertHook(settings.jobs.alert_webhook_url)

    def alert(payload: dict[str, Any]) -> None:
        log.error("rollout rolled back", **payload)
        hook.send(payload)

    return alert


def advance(
    settings: Settings, stores: Stores, now: datetime, alert: rollout.Alert | None = None
) -> list[dict[str, Any]]:
    """Tick every rollout whose experiment is running; what each did."""
    store = ExperimentStore(stores.database.sql_backend("experiments"))
    try:
        registry = open_registry(settings, stores.artifacts)
        done = []

        def data(experiment: Experiment, moment: datetime) -> ExperimentData:
            return guardrail_data(settings, stores, experiment, moment)

        for stored in store.list(status="running"):
            key = stored.experiment.key
            if not key.startswith(rollout.PREFIX):
                continue
            state, action = rollout.tick(
                store,
                registry,
                key,
                settings=settings,
                data=data,
                alert=alert or alert_hook(settings),
                now=now,
            )
            log.info("rollout.tick", experiment=key, action=action, step=state.step + 1)
            done.append({"experiment": key, "action": action, **_brief(state)})
        return done
    finally:
        store.close()


def guardrail_data(
    settings: Settings, stores: Stores, experiment: Experiment, now: datetime
) -> ExperimentData:
    """The guardrails' metrics only (``stored.stored_data``): what a tick every few minutes
    needs."""
    metrics = sorted({guardrail.metric for guardrail in experiment.guardrails})
    return stored_data(settings, stores, experiment, now=now, metrics=metrics)


def _brief(state: rollout.Rollout) -> dict[str, Any]:
    described = state.describe()
    return {name: described[name] for name in ("status", "step", "share_percent", "reason")}


def run(context: JobContext) -> dict[str, Any]:
    context.check()
    return {"rollouts": advance(context.settings, context.stores, context.end)}
