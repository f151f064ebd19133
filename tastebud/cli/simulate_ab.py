"""``tastebud simulate --local --experiment FILE``: a first A/B test on a laptop. The local
gateway serves the quickstart world; the experiment is created and started through its API,
the simulated users meet it, it is stopped (``tastebud.cli.simulate``), and the analysis of
what the stores hold is printed here beside the simulator's truth
(``tastebud.simulation.ab``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tastebud.cli.common import fail, out

if TYPE_CHECKING:
    from tastebud.experiments.analysis import Analysis, MetricResult


def definition_from(path: Path) -> dict[str, Any]:
    """The definition file, read before the world is built (a bad file fails fast)."""
    from tastebud.simulation.ab import read_definition  # lazy: CLI start-up

    try:
        return read_definition(path)
    except ValueError as error:
        raise fail(f"--experiment: {error}") from None


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
