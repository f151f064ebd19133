"""The ``guardrails`` job on a real app: a variant seeded to serve one-item lists (every
candidate source starved) breaches its ``list_length`` guardrail and is paused by one run
(its users then get control), the alert reaches a webhook served over real HTTP, once; a
healthy variant stays; too little data is an outcome, never a traceback; and a person
resumes the variant after review, audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api.experiment_lab import LIST_LENGTH, STARVED, Lab
from jobs.webhook import Webhook
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.experiments.definition import parse_definition
from tastebud.experiments.store import ExperimentStore
from tastebud.jobs import open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.runner import JobRunner, RunOutcome
from tastebud.observability import metrics
from tastebud.stores import open_stores

USERS = [f"u{n}" for n in range(60)]
GUARDED = {
    "key": "guarded",
    "owner": "ranking team",
    "variants": [
        {"name": "control", "weight": 0.34},
        {"name": "starved", "weight": 0.33, "ranking": STARVED},
        {"name": "diluted", "weight": 0.33, "ranking": {"blend": {"alpha": 0.5}}},
    ],
    "goals": ["click_through"],
    "guardrails": [
        {"metric": "list_length", "threshold": 3, "min_users": 10},
        {"metric": "empty_lists", "threshold": 0.2, "min_users": 10},
        {"metric": "skip_rate", "max_relative_change": 0.1, "min_users": 10},  # no skips: no data
    ],
}


@pytest.fixture(params=["embedded", "postgres"])
def lab(
    request: pytest.FixtureRequest,
    home: Path,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Lab]:
    """The app on the embedded database or a private PostgreSQL schema (the CLI too)."""
    database: dict[str, Any] = {}
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("TASTEBUD_DATABASE_URL", url)
        database["database_url"] = url
    experiments = {"webhook_url": webhook.url, "metrics": {"list_length": LIST_LENGTH}}
    lab = Lab(home, experiments=experiments, **database)
    yield lab
    lab.close()


def run_guardrails(lab: Lab) -> RunOutcome:
    settings = lab.world.settings
    history = open_run_history(settings)
    try:
        runner = JobRunner(
            settings, build_registry(settings=settings), history, stores=lab.world.stores
        )
        return runner.run("guardrails", end=datetime.now(UTC))
    finally:
        history.close()


def breaches(metric: str) -> float:
    labels = {"experiment": "guarded", "metric": metric}
    value = metrics.registry.get_sample_value(
        "tastebud_experiment_guardrail_breaches_total", labels
    )
    return value or 0.0


def experiment_store(lab: Lab) -> ExperimentStore:
    return ExperimentStore(lab.world.stores.database.sql_backend("experiments"))


def test_a_breaching_variant_is_paused_by_one_run_and_alerts_once(
    lab: Lab, webhook: Webhook
) -> None:
    lab.define(GUARDED)
    quiet = run_guardrails(lab)  # running, nothing served yet: not enough data, no traceback
    assert quiet.status == "succeeded", quiet.error
    assert quiet.output["not_enough_data"] == ["guarded"] and quiet.output["paused"] == []
    assert "no exposures" in quiet.output["experiments"]["guarded"]["notes"][0]
    variants = {user: lab.serve(user) for user in USERS}
    starved_users = [u for u, body in variants.items() if body["variant"] == "starved"]
    assert starved_users and all(len(variants[u]["items"]) == 1 for u in starved_users)
    lab.exposures()  # flushed: what the job reads
    before = breaches("list_length")

    outcome = run_guardrails(lab)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.output["paused"] == ["guarded:starved"]
    judged = {
        (g["variant"], g["metric"]): g
        for g in outcome.output["experiments"]["guarded"]["guardrails"]
    }
    assert (
        judged["starved", "list_length"]["breached"]
        and judged["starved", "list_length"]["value"] == 1
    )
    assert (
        judged["diluted", "empty_lists"]["judged"]
        and not judged["diluted", "empty_lists"]["breached"]
    )
    assert not judged["starved", "skip_rate"]["judged"]  # no skips at all: not enough data
    assert breaches("list_length") == before + 1
    (alert,) = webhook.received
    assert alert["alert"] == "guardrail_breach" and alert["experiment"] == "guarded"
    assert (alert["variant"], alert["metrics"], alert["action"]) == (
        "starved",
        ["list_length"],
        "paused",
    )
    assert "--reviewed-by" in alert["resume"]
    store = experiment_store(lab)
    try:
        stored = store.require("guarded").experiment
        assert list(stored.paused_variants) == ["starved"]
        assert "list_length" in stored.paused_variants["starved"]
        entry = store.audit("guarded")[-1]
        assert (entry.action, entry.actor) == ("pause_variant:starved", "guardrails job")
    finally:
        store.close()
    # Within one watcher poll, the paused variant's users get control (not counted).
    lab.wait(lambda: lab.serve(starved_users[0])["variant"] == "control")
    assert all(lab.serve(user)["items"] for user in starved_users[:5])

    again = run_guardrails(lab)  # the paused variant is not judged again: no second alert
    assert again.status == "succeeded" and again.output["paused"] == []
    assert len(webhook.received) == 1 and breaches("list_length") == before + 1
    assert "starved already paused" in " ".join(again.output["experiments"]["guarded"]["notes"])

    # A person reviews and resumes it; the audit trail says who and why.
    resumed = CliRunner().invoke(
        app,
        [
            *("experiments", "resume", "guarded", "--variant", "starved"),
            *("--reviewed-by", "ana", "--note", "candidate sources restored"),
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    store = experiment_store(lab)
    try:
        assert store.require("guarded").experiment.paused_variants == {}
        entry = store.audit("guarded")[-1]
        assert (entry.action, entry.actor, entry.note) == (
            "resume_variant:starved",
            "ana",
            "candidate sources restored",
        )
    finally:
        store.close()


def test_the_job_runs_every_guardrails_minutes(home: Path) -> None:
    assert build_registry().get("guardrails").schedule.describe() == "every 5m"
    settings = load_settings(experiments={"guardrails_minutes": 2})
    assert build_registry(settings=settings).get("guardrails").schedule.describe() == "every 2m"


def test_a_guardrail_metric_no_longer_configured_is_not_enough_data(home: Path) -> None:
    """Defined while ``list_length`` was configured, judged after it was removed: a note in
    the run's output, not a failure."""
    with_metric = load_settings(
        online_url="memory://", experiments={"metrics": {"list_length": LIST_LENGTH}}
    )
    without = load_settings(online_url="memory://")
    stores = open_stores(with_metric)
    history = open_run_history(without)
    store = ExperimentStore(stores.database.sql_backend("experiments"))
    try:
        store.put(parse_definition(GUARDED, with_metric), actor="ana")
        store.set_status("guarded", "running", actor="ana")
        jobs = JobRunner(without, build_registry(settings=without), history, stores=stores)
        outcome = jobs.run("guardrails", end=datetime.now(UTC))
        assert outcome.status == "succeeded", outcome.error
        guarded = outcome.output["experiments"]["guarded"]
        assert guarded["status"] == "not_enough_data" and guarded["paused"] == []
        assert "'list_length' is not configured" in guarded["notes"][0]
        assert "no exposures" in guarded["notes"][1]
    finally:
        store.close()
        history.close()
        stores.close()
