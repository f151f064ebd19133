"""``tastebud simulate --local --experiment FILE``: a first A/B test on a laptop. The local
gateway serves the quickstart world; the experiment is created and started through its API,
the simulated users meet it, it is stopped, and the analysis of what the stores hold is
printed beside the simulator's truth (``tastebud.simulation.ab``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tastebud.cli.common import fail, out

if TYPE_CHECKING:
    from tastebud.cli.simulate import LocalHome
    from tastebud.experiments.analysis import Analysis, MetricResult
    from tastebud.simulation.loop import LoopConfig, LoopSummary


def definition_from(path: Path) -> dict[str, Any]:
    """The definition file, read before the world is built (a bad file fails fast)."""
    from tastebud.simulation.ab import read_definition  # lazy: CLI start-up

    try:
        return read_definition(path)
    except ValueError as error:
        raise fail(f"--experiment: {error}") from None


def run_experiment(
    home: LocalHome, definition: dict[str, Any], config: LoopConfig
) -> tuple[LoopSummary, Analysis, dict[str, dict[str, Any]]]:
    """Serve, start the experiment, run the loop, stop it; then analyze once the gateway
    has stopped (its exposures written)."""
    import httpx  # lazy: CLI start-up

    from tastebud.cli.simulate import WATCH_SECONDS, _run, serve_local  # lazy: a cycle
    from tastebud.client import GatewayError  # lazy: CLI start-up
    from tastebud.experiments.stored import NothingToAnalyze  # lazy: CLI start-up
    from tastebud.simulation import ab  # lazy: numpy (CLI start-up)

    with serve_local(home.settings) as url:
        headers = {"X-API-Key": home.admin_key}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as admin:
            try:
                key = ab.start_experiment(admin, definition, settle_seconds=4 * WATCH_SECONDS)
            except GatewayError as error:
                raise fail(f"--experiment: the gateway refused it: {error}") from None
            summary = _run(home.model, url, home.key, config)
            ab.stop_experiment(admin, key)
    try:
        analysis = ab.analyze_database(home.settings, key, now=datetime.now(UTC))
    except NothingToAnalyze as error:
        raise fail(str(error)) from None
    return summary, analysis, ab.truth_by_variant(summary, key, analysis.control)


def report_experiment(
    analysis: Analysis,
    truth: dict[str, dict[str, Any]],
    as_json: bool,
    report_dir: Path | None,
) -> dict[str, Any]:
    """Print the analysis (or leave it to the JSON), write the report; the JSON part."""
    if report_dir is not None:
        # lazy: matplotlib for the report's charts
        from tastebud.experiments.report import write_report

        path = write_report(analysis, report_dir)
        if not as_json:
            out.print(f"report: {path}", soft_wrap=True)
    document = {"analysis": json.loads(analysis.to_json()), "truth": truth}
    if as_json:
        return document
    srm = analysis.srm
    out.print(
        f"experiment {analysis.experiment}: users {analysis.exposed_users}, sample ratio "
        f"p={srm.p_value:.3g} ({'MISMATCH' if srm.flagged else 'ok'})",
        soft_wrap=True,
    )
    for result in analysis.results:
        if result.role != "secondary" or result.metric == "click_through":
            out.print("  " + _line(result), soft_wrap=True)
    for name, row in truth.items():
        lift = row["true_lift"]
        out.print(
            f"  truth {name}: click-through {_pct(row['true_click_through'])}"
            + ("" if name == analysis.control or lift is None else f", lift {lift:+.1%}"),
            soft_wrap=True,
        )
    for warning in analysis.warnings:
        out.print(f"  warning: {warning}", soft_wrap=True)
    out.print(f"decision: {analysis.decision.line}", soft_wrap=True)
    return document


def _line(result: MetricResult) -> str:
    head = f"{result.metric} ({result.role}) {result.variant}"
    comparison = result.comparison
    if comparison is None:
        return f"{head}: {result.note or 'no comparison'}"
    lift = comparison.relative
    interval = (
        f" [{lift.low:+.1%}, {lift.high:+.1%}]"
        if lift.low is not None and lift.high is not None
        else ""
    )
    estimate = "-" if lift.estimate is None else f"{lift.estimate:+.1%}"
    p = "-" if comparison.p_value is None else f"{comparison.p_value:.3g}"
    return (
        f"{head}: {comparison.control:.4g} -> {comparison.treatment:.4g}, "
        f"lift {estimate}{interval}, p={p}"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
