"""An experiment's report for people: Markdown with the decision first, then trust (sample
ratio), warnings, goal, guardrail and other metric tables, and two PNG charts (each
metric's relative lift with its interval; the goals' cumulative lift by exposure day). The
analysis itself goes alongside as JSON for machines.

Charts are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tastebud.experiments.analysis import Analysis, MetricResult
from tastebud.experiments.stats import Comparison, Lift

ROLE_COLOURS = {"goal": "#1f77b4", "guardrail": "#d62728", "secondary": "#7f7f7f"}


def write_report(analysis: Analysis, out_dir: Path | str) -> Path:
    """Write ``report.md``, ``analysis.json``, ``lift.png`` and (when there are days to
    plot) ``cumulative.png`` into ``out_dir``; return the Markdown's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "analysis.json").write_text(analysis.to_json() + "\n")
    charts = []
    if _lift_chart(analysis, out / "lift.png"):
        charts.append(("Relative lift with intervals", "lift.png"))
    if _cumulative_chart(analysis, out / "cumulative.png"):
        charts.append(
            ("Cumulative lift by exposure day (always-valid intervals)", "cumulative.png")
        )
    path = out / "report.md"
    path.write_text(_markdown(analysis, charts))
    return path


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _interval(lift: Lift, percent: bool) -> str:
    show = _pct if percent else _num
    if lift.low is None or lift.high is None:
        return show(lift.estimate)
    return f"{show(lift.estimate)} [{show(lift.low)}, {show(lift.high)}]"


def _shown(result: MetricResult, sequential: bool) -> Comparison | None:
    """The comparison a table shows: the always-valid one for guardrails and for goals of
    a sequential experiment, else the fixed-n one."""
    if result.role == "guardrail" or (result.role == "goal" and sequential):
        return result.sequential or result.comparison
    return result.comparison


def _table(analysis: Analysis, role: str, sequential: bool) -> list[str]:
    rows = [r for r in analysis.results if r.role == role]
    if not rows:
        return []
    holm = " | Holm p" if role == "goal" else ""
    lines = [
        f"| metric | variant | control | variant value | absolute lift | relative lift | p{holm} "
        "| method | CUPED variance reduction |",
        "|" + "---|" * (10 if holm else 9),
    ]
    for result in rows:
        shown = _shown(result, sequential)
        if shown is None:
            empty = " | ".join(["n/a"] * (6 if holm else 5))
            lines.append(f"| {result.metric} | {result.variant} | {empty} | {result.note} | |")
            continue
        p_value = "n/a" if shown.p_value is None else f"{shown.p_value:.3g}"
        adjusted = f" | {result.adjusted_p:.3g}" if holm and result.adjusted_p is not None else ""
        adjusted = adjusted or (" | n/a" if holm else "")
        reduction = result.comparison.variance_reduction if result.comparison else None
        lines.append(
            f"| {result.metric} | {result.variant} | {_num(shown.control)} | "
            f"{_num(shown.treatment)} | {_interval(shown.absolute, False)} | "
            f"{_interval(shown.relative, True)} | {p_value}{adjusted} | {shown.method} | "
            f"{'n/a' if reduction is None else f'{reduction:.1%}'} |"
        )
    return lines


def _markdown(analysis: Analysis, charts: list[tuple[str, str]]) -> str:
    decision = analysis.decision
    srm = analysis.srm
    sequential = any(r.role == "goal" and r.sequential for r in analysis.results)
    users = ", ".join(f"{name}: {n:,}" for name, n in analysis.exposed_users.items())
    lines = [
        f"# Experiment `{analysis.experiment}`",
        "",
        f"**Decision: {decision.line}** — {decision.reason}",
        "",
        f"- Users: {users} (plan: "
        + (f"{analysis.required_users:,} per variant)" if analysis.required_users else "none)"),
        f"- Sample ratio: chi-square p = {srm.p_value:.3g} "
        + ("**below the threshold: results untrustworthy**" if srm.flagged else "(no mismatch)"),
        f"- Days: {analysis.days}; alpha = {analysis.alpha:g}"
        + ("; goals use always-valid (sequential) intervals" if sequential else ""),
        "",
    ]
    if analysis.warnings:
        lines += ["## Warnings", "", *[f"- {warning}" for warning in analysis.warnings], ""]
    for role, title in (
        ("goal", "Goals"),
        ("guardrail", "Guardrail metrics"),
        ("secondary", "Other metrics"),
    ):
        table = _table(analysis, role, sequential)
        if table:
            lines += [f"## {title}", "", *table, ""]
    if analysis.guardrails:
        lines += ["## Guardrails", "", "| metric | variant | status | why |", "|---|---|---|---|"]
        for g in analysis.guardrails:
            status = "BREACHED" if g.breached else ("ok" if g.judged else "not judged")
            lines.append(f"| {g.metric} | {g.variant} | {status} | {g.reason} |")
        lines.append("")
    for title, name in charts:
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += [
        "Intervals are at 1 - alpha. Relative lifts divide by control's unadjusted value; "
        "their intervals use the delta method. Guardrails (and goals of a sequential "
        "experiment) use always-valid intervals, which stay valid however often one looks.",
        "",
    ]
    return "\n".join(lines)


def _lift_chart(analysis: Analysis, path: Path) -> bool:
    rows = [
        (r, shown)
        for r in analysis.results
        if (shown := _shown(r, any(x.role == "goal" and x.sequential for x in analysis.results)))
        and shown.relative.estimate is not None
    ]
    if not rows:
        return False
    figure = Figure(figsize=(8, 1.2 + 0.45 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    for index, (result, shown) in enumerate(reversed(rows)):
        lift = shown.relative
        estimate = 100 * lift.estimate
        colour = ROLE_COLOURS[result.role]
        if lift.low is not None and lift.high is not None:
            error = [[estimate - 100 * lift.low], [100 * lift.high - estimate]]
            axes.errorbar(estimate, index, xerr=error, fmt="o", color=colour, capsize=4)
        else:
            axes.plot(estimate, index, "D", color=colour)
    axes.axvline(0, color="black", linewidth=0.8)
    labels = [f"{r.metric} ({r.variant}, {r.role})" for r, _ in reversed(rows)]
    axes.set_yticks(range(len(rows)), labels)
    axes.set_xlabel("relative lift vs control (%)")
    axes.set_title(
        f"{analysis.experiment}: lift with {1 - analysis.alpha:.0%} intervals "
        "(guardrails: always-valid)"
    )
    axes.grid(axis="x", alpha=0.3)
    FigureCanvasAgg(figure).print_png(str(path))
    return True


def _cumulative_chart(analysis: Analysis, path: Path) -> bool:
    metrics = list(dict.fromkeys(point.metric for point in analysis.cumulative))
    if not metrics:
        return False
    figure = Figure(figsize=(8, 3 * len(metrics)), layout="constrained")
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(len(metrics), 1, index + 1)
        points = [p for p in analysis.cumulative if p.metric == metric]
        for variant in dict.fromkeys(p.variant for p in points):
            mine = [p for p in points if p.variant == variant and p.relative is not None]
            days = [p.day for p in mine]
            (line,) = axes.plot(days, [100 * p.relative for p in mine], marker="o", label=variant)
            banded = [p for p in mine if p.low is not None and p.high is not None]
            axes.fill_between(
                [p.day for p in banded],
                [100 * p.low for p in banded],
                [100 * p.high for p in banded],
                color=line.get_color(),
                alpha=0.2,
            )
        axes.axhline(0, color="black", linewidth=0.8)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(f"{metric}: cumulative relative lift")
        axes.set_xlabel("day (users exposed by its end)")
        axes.set_ylabel("lift vs control (%)")
        axes.legend(loc="best")
        axes.grid(alpha=0.3)
    FigureCanvasAgg(figure).print_png(str(path))
    return True
