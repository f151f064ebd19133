"""The guardrails' data for a rollout from a deployment's own stores: events from the event
store, exposures from the exposure log, the active catalog's size.

A minimal loader of the rollout's own (``run.analyze_stored`` on branch exp-guard is the
general one; once merged, the rollout may call it instead): only the guardrails' metrics are
computed, which is what a tick every few minutes needs.
"""

from __future__ import annotations

from datetime import datetime

from tastebud.config import Settings
from tastebud.experiments.definition import Experiment
from tastebud.experiments.exposure_log import open_exposure_log
from tastebud.experiments.metrics import experiment_data
from tastebud.experiments.samples import ExperimentData
from tastebud.experiments.sources import events_reader
from tastebud.stores import Stores


def stored_data(
    settings: Settings, stores: Stores, experiment: Experiment, now: datetime
) -> ExperimentData:
    """The guardrail metrics of ``experiment`` as of ``now`` (raises ``NoExposures`` before
    any user was served)."""
    log = open_exposure_log(settings, stores.database)
    try:
        return experiment_data(
            experiment,
            settings,
            lambda since, until: events_reader(stores.events, since, until),
            log.scan,
            catalog_size=max(1, stores.catalog.count_items(active=True)),
            now=now,
            metrics=sorted({guardrail.metric for guardrail in experiment.guardrails}),
        )
    finally:
        log.close()
