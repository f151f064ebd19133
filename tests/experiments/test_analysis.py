"""The analysis' decision rules, warnings and guardrails on generated data with a known
truth, and the report it writes (Markdown, JSON, PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tastebud.config import ExperimentSettings
from tastebud.experiments.analysis import Analysis, AnalysisError, analyze, evaluate_guardrails
from tastebud.experiments.definition import Experiment
from tastebud.experiments.report import write_report
from tastebud.experiments.samples import ExperimentData, MetricSample, VariantSample
from tastebud.experiments.stats import holm

SETTINGS = ExperimentSettings()
USERS = 4_000


def _experiment(variants: tuple[str, ...] = ("control", "B"), **changes: Any) -> Experiment:
    weight = 1 / len(variants)
    definition: dict[str, Any] = {
        "key": "blend",
        "variants": [{"name": name, "weight": weight} for name in variants],
        "goals": ["click_through", "plays_per_user"],
        "guardrails": [
            {"metric": "skip_rate", "max_relative_change": 0.1},
            {"metric": "latency_p95", "threshold": 400.0},
        ],
        "min_sample_size": 2_000,
    }
    definition.update(changes)
    return Experiment.model_validate(definition)


def _arm(
    rng: np.random.Generator, ctr: float, plays: float, skip: float, latency: float
) -> dict[str, VariantSample]:
    shown = rng.poisson(15, USERS) + 1
    taste = rng.gamma(2.0, BASE["plays"] / 2, USERS)  # the pre-period knows no variant
    days = rng.integers(0, 5, USERS)
    return {
        "click_through": VariantSample(
            numerator=rng.binomial(shown, ctr).astype(float),
            denominator=shown.astype(float),
            first_day=days,
        ),
        "plays_per_user": VariantSample(
            numerator=rng.poisson(taste * plays / BASE["plays"]).astype(float),
            pre_numerator=rng.poisson(taste * 0.9).astype(float),
            first_day=days,
        ),
        "skip_rate": VariantSample(
            numerator=rng.binomial(shown, skip).astype(float), denominator=shown.astype(float)
        ),
        "latency_p95": VariantSample(
            numerator=np.zeros(USERS), values=rng.exponential(latency / 3, 3 * USERS)
        ),
    }


BASE = {"ctr": 0.10, "plays": 5.0, "skip": 0.30, "latency": 60.0}


def _data(
    *treatments: dict[str, float], exposed: list[int] | None = None, seed: int = 1
) -> ExperimentData:
    rng = np.random.default_rng(seed)
    names = ["control", *("BCDE"[i] for i in range(len(treatments)))]
    arms = {"control": _arm(rng, **BASE)}
    for name, change in zip(names[1:], treatments, strict=True):
        arms[name] = _arm(rng, **{**BASE, **change})
    metrics = {
        metric: MetricSample(metric, SETTINGS.metrics[metric], {n: arms[n][metric] for n in names})
        for metric in arms["control"]
    }
    counts = exposed or [USERS] * len(names)
    return ExperimentData(
        key="blend",
        variants=names,
        weights=[1 / len(names)] * len(names),
        exposed_users=dict(zip(names, counts, strict=True)),
        metrics=metrics,
        days=5,
    )


def test_a_clear_winner_is_shipped() -> None:
    analysis = analyze(_experiment(), _data({"ctr": 0.11, "plays": 5.4}), SETTINGS)
    assert analysis.decision.action == "ship" and analysis.decision.line == "ship B"
    assert analysis.trustworthy and not analysis.srm.flagged
    goals = [r for r in analysis.results if r.role == "goal"]
    assert [r.metric for r in goals] == ["click_through", "plays_per_user"]
    assert [r.adjusted_p for r in goals] == holm([r.comparison.p_value for r in goals])
    plays = goals[1].comparison
    assert plays.method == "welch + cuped" and plays.variance_reduction > 0.2
    assert all(r.sequential for r in analysis.results if r.role == "guardrail")
    assert not any(g.breached for g in analysis.guardrails)


def test_sample_ratio_mismatch_blocks_shipping() -> None:
    data = _data({"ctr": 0.11, "plays": 5.4}, exposed=[4_160, 3_840])
    analysis = analyze(_experiment(), data, SETTINGS)
    assert analysis.srm.flagged and not analysis.trustworthy
    assert analysis.decision.action == "stop" and "untrustworthy" in analysis.decision.line
    assert any("sample ratio mismatch" in warning for warning in analysis.warnings)


def test_a_breached_guardrail_blocks_shipping_a_winner() -> None:
    data = _data({"ctr": 0.11, "plays": 5.4, "latency": 500.0})
    analysis = analyze(_experiment(), data, SETTINGS)
    latency = next(g for g in analysis.guardrails if g.metric == "latency_p95")
    assert latency.breached and "threshold 400" in latency.reason
    assert analysis.decision.action == "stop"
    assert analysis.decision.line == "stop: B breached a guardrail"


def test_too_few_users_keeps_it_running() -> None:
    experiment = _experiment(min_sample_size=50_000)
    analysis = analyze(experiment, _data({"ctr": 0.11, "plays": 5.4}), SETTINGS)
    assert analysis.decision.action == "keep running" and analysis.decision.variant == "B"
    assert "4,000 of the 50,000" in analysis.decision.reason
    assert any(w.startswith("too few users") for w in analysis.warnings)


def test_the_power_calculation_sets_the_required_size() -> None:
    experiment = _experiment(min_sample_size=None, minimum_effect=0.01)
    analysis = analyze(experiment, _data({"ctr": 0.11, "plays": 5.4}), SETTINGS)
    assert analysis.required_users > 50_000  # a 1% lift on a 10% click-through
    assert analysis.decision.action == "keep running"


def test_a_worse_variant_is_stopped() -> None:
    analysis = analyze(_experiment(), _data({"ctr": 0.09}), SETTINGS)
    assert analysis.decision.action == "stop" and analysis.decision.line == "stop: B is worse"
    assert "click_through" in analysis.decision.reason


def test_no_effect_at_the_planned_size_stops_and_without_a_plan_keeps_running() -> None:
    data = _data({}, seed=3)
    analysis = analyze(_experiment(), data, SETTINGS)
    assert analysis.decision.line == "stop: no effect"
    unplanned = analyze(_experiment(min_sample_size=None), data, SETTINGS)
    assert unplanned.decision.action == "keep running"
    assert any("no planned size" in w for w in unplanned.warnings)


def test_the_best_of_several_winners_is_shipped() -> None:
    experiment = _experiment(("control", "B", "C"))
    data = _data({"ctr": 0.11, "plays": 5.3}, {"ctr": 0.115, "plays": 5.6})
    analysis = analyze(experiment, data, SETTINGS)
    assert analysis.decision.line == "ship C"
    assert len([r for r in analysis.results if r.role == "goal"]) == 4


def test_large_lifts_and_missing_metrics_are_warned_about() -> None:
    data = _data({"ctr": 0.14})
    del data.metrics["skip_rate"]
    analysis = analyze(_experiment(goals=["click_through", "conversion"]), data, SETTINGS)
    assert any(w.startswith("suspiciously large lift on click_through") for w in analysis.warnings)
    assert "no data for goal metric 'conversion'" in analysis.warnings
    assert "no data for guardrail metric 'skip_rate'" in analysis.warnings
    skip = next(g for g in analysis.guardrails if g.metric == "skip_rate")
    assert not skip.judged and not skip.breached


def test_sequential_goals_use_always_valid_p_values() -> None:
    data = _data({"ctr": 0.11, "plays": 5.4})
    analysis = analyze(_experiment(sequential=True), data, SETTINGS)
    goals = [r for r in analysis.results if r.role == "goal"]
    assert all(r.sequential for r in goals)
    assert [r.adjusted_p for r in goals] == holm([r.sequential.p_value for r in goals])


def test_bad_data_is_a_clear_error() -> None:
    data = _data({})
    data.exposed_users = {"control": 0, "B": 0}
    with pytest.raises(AnalysisError, match="no exposures"):
        analyze(_experiment(), data, SETTINGS)
    with pytest.raises(AnalysisError, match="do not match"):
        analyze(_experiment(("control", "X")), _data({}), SETTINGS)


def test_guardrails_on_their_own() -> None:
    experiment = _experiment(
        guardrails=[
            {"metric": "skip_rate", "max_relative_change": 0.1, "sequential": False},
            {"metric": "latency_p95", "threshold": 400.0, "min_users": 10_000},
            {"metric": "plays_per_user"},
        ]
    )
    results = evaluate_guardrails(experiment, _data({"skip": 0.36, "plays": 4.5}), SETTINGS)
    skip, latency, plays = results
    assert skip.breached and "past the 10% allowed" in skip.reason
    assert not latency.judged and "judged from 10000" in latency.reason
    assert plays.breached and "always-valid" in plays.reason
    calm = evaluate_guardrails(experiment, _data({}, seed=5), SETTINGS)
    assert not any(g.breached for g in calm)


def test_the_report_is_written(tmp_path: Path) -> None:
    analysis = analyze(_experiment(), _data({"ctr": 0.11, "plays": 5.4}), SETTINGS)
    path = write_report(analysis, tmp_path / "out")
    text = path.read_text()
    assert "**Decision: ship B**" in text and "![Relative lift" in text
    assert "| click_through | B |" in text and "welch + cuped" in text
    for name in ("lift.png", "cumulative.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    text_json = (tmp_path / "out" / "analysis.json").read_text()
    assert Analysis.model_validate_json(text_json) == analysis  # the dashboard can read it back
    loaded = json.loads(text_json)
    assert loaded["decision"]["line"] == "ship B"
    assert {p["day"] for p in loaded["cumulative"]} == set(range(5))


def test_cumulative_lift_ends_at_the_whole_experiment_and_grows_in_users() -> None:
    analysis = analyze(_experiment(), _data({"ctr": 0.11, "plays": 5.4}), SETTINGS)
    for metric in ("click_through", "plays_per_user"):
        curve = [p for p in analysis.cumulative if p.metric == metric]
        assert [p.day for p in curve] == list(range(5))
        assert [p.users for p in curve] == sorted(p.users for p in curve)
        assert curve[-1].users == 2 * USERS
        final = next(r for r in analysis.results if r.metric == metric)
        assert curve[-1].relative == pytest.approx(final.comparison.relative.estimate)
        assert curve[-1].high - curve[-1].low < curve[0].high - curve[0].low


def test_a_coverage_guardrail_is_judged_on_its_threshold() -> None:
    data = _data({})
    data.metrics["coverage"] = MetricSample(
        "coverage",
        SETTINGS.metrics["coverage"],
        {
            "control": VariantSample(numerator=np.zeros(0), distinct=400, catalog=1_000),
            "B": VariantSample(numerator=np.zeros(0), distinct=150, catalog=1_000),
        },
    )
    experiment = _experiment(guardrails=[{"metric": "coverage", "threshold": 0.2}])
    (result,) = evaluate_guardrails(experiment, data, SETTINGS)
    assert result.judged and result.breached and "below the threshold 0.2" in result.reason
    assert result.users == USERS


def test_a_coverage_goal_and_broken_arrays_become_notes_not_tracebacks() -> None:
    data = _data({"ctr": 0.11, "plays": 5.4})
    data.metrics["coverage"] = MetricSample(
        "coverage",
        SETTINGS.metrics["coverage"],
        {
            "control": VariantSample(numerator=np.zeros(0), distinct=400, catalog=1_000),
            "B": VariantSample(numerator=np.zeros(0), distinct=420, catalog=1_000),
        },
    )
    skip = data.metrics["skip_rate"].variants["B"]
    skip.denominator = skip.denominator[:-1]
    experiment = _experiment(goals=["click_through", "plays_per_user", "coverage"])
    analysis = analyze(experiment, data, SETTINGS)
    coverage = next(r for r in analysis.results if r.metric == "coverage")
    assert coverage.adjusted_p is None and coverage.comparison.relative.estimate == pytest.approx(
        0.05
    )
    assert "skip_rate (B): denominator has 3999 values for 4000 users" in analysis.warnings
    assert analysis.decision.line == "ship B"
