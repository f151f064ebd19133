"""The retraining triggers: rules and rules files refused with the file and field named,
the cooldown that stops a flapping signal from training in a loop, and checks that cannot
run reporting ``error`` (never a pass, never a trigger)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from tastebud.config import load_settings
from tastebud.jobs import JobFailed, JobRunner, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.monitoring.runner import open_results, run_monitor
from tastebud.monitoring.triggers import load_triggers_file, triggers_from
from tastebud.quality.rules import RulesError

from .conftest import CHECKED, SHIFT

# A signal that fires on every run: any model is older than six minutes.
FLAPPING = {
    "triggers": {
        "max_age_hours": 0.1,
        **dict.fromkeys(("ndcg_drop", "score_psi", "data_psi", "new_events", "new_items")),
    },
    "cooldown_hours": 24,
}


def test_a_rules_file_overrides_the_settings_and_false_turns_a_rule_off(tmp_path: Path) -> None:
    path = tmp_path / "triggers.toml"
    path.write_text("[triggers]\nndcg_drop = 0.2\nnew_items = false\n")
    settings = load_settings(home=tmp_path, monitoring={"rules_file": path})
    rules = triggers_from(settings.monitoring)
    assert rules.ndcg_drop == 0.2 and rules.new_items is None
    assert rules.max_age_hours == 168.0  # untouched: the default


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[triggers]\nndcg_dorp = 0.2\n", "unknown trigger 'ndcg_dorp'"),
        ("[triggers]\nndcg_drop = 1.5\n", "triggers.ndcg_drop: Input should be less than 1"),
        ("[triggers]\nnew_events = -3\n", "triggers.new_events: Input should be greater"),
        ("[triggers]\nmax_age_hours = 'soon'\n", "triggers.max_age_hours"),
        ("[trigger]\nndcg_drop = 0.2\n", "trigger: Extra inputs are not permitted"),
        ("[triggers\n", "not TOML"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = tmp_path / "triggers.toml"
    path.write_text(text)
    with pytest.raises(RulesError) as refused:
        load_triggers_file(path)
    assert str(path) in str(refused.value) and field in str(refused.value)


def test_bad_settings_are_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"triggers\.ndcg_drop"):
        load_settings(home=tmp_path, monitoring={"triggers": {"ndcg_drop": 0}})
    with pytest.raises(ValidationError, match=r"triggers\.vibes"):
        load_settings(home=tmp_path, monitoring={"triggers": {"vibes": 1}})


def test_the_retrain_job_refuses_a_bad_rules_file(build, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[triggers]\nnew_itmes = 5\n")
    stores, settings = build("a", rules_file=path)
    runner = JobRunner(settings, build_registry(), open_run_history(settings), stores=stores)
    with pytest.raises(JobFailed, match="new_itmes"):
        runner.run("retrain", end=CHECKED)
    assert [run.job_name for run in runner.history.list_runs()] == ["retrain"]  # no train


def test_the_cooldown_holds_a_flapping_trigger(build) -> None:
    stores, settings = build("a", quality={"critical": ["schema"]}, **FLAPPING)
    history = open_run_history(settings)
    runner = JobRunner(settings, build_registry(), history, stores=stores)
    first = runner.run("retrain", end=CHECKED).output
    assert first["firing"] == ["max_age_hours"] and first["trained"] is True
    assert first["train"]["status"] == "succeeded"
    for hours in (1, 12, 23):  # still firing (the new model is older than 0.1 h): held
        held = runner.run("retrain", end=CHECKED + timedelta(hours=hours)).output
        assert held["firing"] == ["max_age_hours"] and held["trained"] is False
        assert held["held"].startswith("cooldown until")
    later = runner.run("retrain", end=CHECKED + timedelta(hours=25)).output
    assert later["trained"] is True
    triggered = [run.trigger for run in history.list_runs(job_name="train")]
    assert triggered == ["retrain:max_age_hours"] * 2


def test_without_a_production_model_every_check_is_an_error_and_nothing_trains(build) -> None:
    stores, settings = build("a", model=False)
    report = run_monitor(stores, settings, as_of=CHECKED)
    assert {check.status for check in report.checks} == {"error"}
    assert report.model_version == "none" and report.firing == []
    assert "no production model" in report.checks[0].message
    runner = JobRunner(settings, build_registry(), open_run_history(settings), stores=stores)
    assert runner.run("retrain", end=CHECKED).output["trained"] is False


def test_no_data_since_training_is_an_error_not_a_pass(build) -> None:
    stores, settings = build("a", until=SHIFT)
    with open_results(stores) as results:
        report = run_monitor(stores, settings, as_of=SHIFT, results=results)
        statuses = {check.check: check.status for check in report.checks}
        assert statuses["baseline"] == "pass"
        assert statuses["offline"] == "error" and statuses["scores"] == "error"
        offline = report.checks[1]
        assert offline.message.startswith("could not run: waiting: 0.0 h of events since")
        assert offline.details == {"waiting": True}  # recorded as an error, not alerted
        assert statuses["age"] == "pass" and statuses["new_data"] == "pass"
        again = run_monitor(stores, settings, as_of=SHIFT, results=results)
    assert "baseline" not in {check.check for check in again.checks}  # computed once


def test_a_running_train_job_holds_the_trigger(build) -> None:
    stores, settings = build("a", **FLAPPING)
    runner = JobRunner(settings, build_registry(), open_run_history(settings), stores=stores)
    with open_run_history(settings).lock("job:train"):  # another process is training
        held = runner.run("retrain", end=CHECKED).output
    assert held["firing"] == ["max_age_hours"] and held["trained"] is False
    assert held["held"] == "the train job is already running"


@pytest.mark.parametrize(("error", "status"), [(0.02, "pass"), (0.005, "fail")])
def test_ndcg_drop_fires_only_when_chance_would_rarely_make_it(error: float, status: str) -> None:
    """A 20% drop (0.20 to 0.16): with standard errors of 0.02 it is 1.4 of them, which chance
    makes often (a quiet day, few users); with 0.005, 5.7, which it does not."""
    from tastebud.config import RetrainingTriggers
    from tastebud.monitoring.runner import _offline

    baseline = ({"ndcg@10": 0.20, "ndcg@10.se": error, "recall@20": 0.3}, {})
    now = {"ndcg@10": 0.16, "ndcg@10.se": error, "recall@20": 0.25, "coverage@10": 0.5}
    check = _offline(RetrainingTriggers(), baseline, {**now, "users": 100.0}, 2.33)
    assert check.status == status
    assert check.metrics["offline.ndcg@10.drop"] == pytest.approx(0.2)
    assert check.metrics["offline.ndcg@10.z"] == pytest.approx(0.04 / (error * 2**0.5))
