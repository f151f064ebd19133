"""An evaluation run's report: JSON for machines, Markdown for people, a PNG chart.

One report holds one protocol (and its options), a dataset summary, and per model its
metrics and timings. The JSON names every metric with a namespace (``cf.offline.`` by
default, e.g. ``cf.offline.ndcg@10``) so the numbers can sit next to online metrics in the
same store without clashing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DEFAULT_NAMESPACE = "cf.offline."
ACCURACY = ("ndcg", "recall", "precision", "map", "mrr", "hitrate")
TRADE_OFFS = ("coverage", "ild", "novelty", "gini", "personalization")
# Metrics on a 0..1 scale that the chart can share one axis for (novelty is in bits).
CHARTED_TRADE_OFFS = ("coverage", "ild", "gini", "personalization")
TRADE_OFF_NOTES = {
    "coverage": "share of the catalog recommended to someone (higher = more of it used)",
    "ild": "mean pairwise cosine distance within a list (higher = more varied lists)",
    "novelty": "mean self-information of recommended items, in bits (higher = less obvious)",
    "gini": "concentration of recommendations on few items (lower = fairer exposure)",
    "personalization": "1 - mean overlap between users' lists (higher = more personal)",
}
LOWER_IS_BETTER = {"gini"}
_K = re.compile(r"^[a-z]+@(\d+)$")


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _finite_or_none(value.item())
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):
        return _finite_or_none(value)
    return str(value)


def summarize_interactions(table: pa.Table) -> dict[str, Any]:
    """Rows, distinct users and items and the time range of an interactions table: the
    ``dataset`` part of a report."""
    summary: dict[str, Any] = {"rows": table.num_rows}
    for name, key in (("user_id", "users"), ("item_id", "items")):
        if name in table.column_names:
            summary[key] = len(pc.unique(table.column(name)))
    if "timestamp" in table.column_names and table.num_rows:
        column = table.column("timestamp")
        if pa.types.is_timestamp(column.type):  # as microseconds: datetime has no ns
            column = column.cast(pa.timestamp("us", tz=column.type.tz), safe=False)
        bounds = pc.min_max(column)
        summary["first"] = _jsonable(bounds["min"].as_py())
        summary["last"] = _jsonable(bounds["max"].as_py())
    return summary


def _format(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4f}"


@dataclass
class EvaluationReport:
    """The protocol, the data it ran on, and each model's metrics and timings.

    ``models[name]`` holds metric names without namespace (``ndcg@10``), as
    ``evaluate_rankings`` returns them; ``timings[name]`` seconds per phase (``fit``,
    ``recommend``...). ``main_k`` picks the K shown in the Markdown and the chart (default:
    10 when present, else the smallest K).
    """

    protocol: str
    options: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    namespace: str = DEFAULT_NAMESPACE
    main_k: int | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def add_model(
        self, name: str, metrics: Mapping[str, float], timings: Mapping[str, float] | None = None
    ) -> None:
        """Record one model's results (replacing an earlier entry of the same name)."""
        if not name:
            raise ValueError("a model needs a name")
        self.models[name] = {key: float(value) for key, value in metrics.items()}
        if timings is not None:
            self.timings[name] = {key: float(value) for key, value in timings.items()}

    def ks(self) -> list[int]:
        found = {
            int(match.group(1))
            for metrics in self.models.values()
            for key in metrics
            if (match := _K.match(key))
        }
        return sorted(found)

    def chosen_k(self) -> int | None:
        if self.main_k is not None:
            return self.main_k
        ks = self.ks()
        if not ks:
            return None
        return 10 if 10 in ks else ks[0]

    def namespaced(self, model: str) -> dict[str, float | None]:
        """One model's metrics with the namespace prefix, NaN as None."""
        return {
            f"{self.namespace}{key}": _finite_or_none(value)
            for key, value in self.models[model].items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "options": _jsonable(self.options),
            "dataset": _jsonable(self.dataset),
            "namespace": self.namespace,
            "main_k": self.chosen_k(),
            "created_at": self.created_at,
            "models": {
                name: {
                    "metrics": self.namespaced(name),
                    "timings": _jsonable(self.timings.get(name, {})),
                }
                for name in self.models
            },
        }

    def to_json(self, path: str | Path) -> Path:
        """Write the report as JSON (strict: NaN becomes null)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return target

    @classmethod
    def from_json(cls, path: str | Path) -> EvaluationReport:
        """Read a report written by ``to_json`` (nulls come back as NaN)."""
        data = json.loads(Path(path).read_text())
        namespace = data.get("namespace", DEFAULT_NAMESPACE)
        report = cls(
            protocol=data["protocol"],
            options=data.get("options", {}),
            dataset=data.get("dataset", {}),
            namespace=namespace,
            main_k=data.get("main_k"),
            created_at=data.get("created_at", ""),
        )
        for name, entry in data.get("models", {}).items():
            metrics = {
                key.removeprefix(namespace): float("nan") if value is None else value
                for key, value in entry.get("metrics", {}).items()
            }
            report.add_model(name, metrics, entry.get("timings") or None)
        return report

    def _table(self, names: Sequence[str], k: int) -> list[str]:
        columns = [name for name in names if any(f"{name}@{k}" in m for m in self.models.values())]
        header = ["model", *(f"{name}@{k}" for name in columns)]
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns)]
        for model, metrics in self.models.items():
            cells = [_format(metrics.get(f"{name}@{k}")) for name in columns]
            lines.append("| " + " | ".join([model, *cells]) + " |")
        return lines

    def _best(self, metric: str) -> tuple[str, float] | None:
        scored = [
            (model, value)
            for model, metrics in self.models.items()
            if (value := metrics.get(metric)) is not None and math.isfinite(value)
        ]
        if not scored:
            return None
        pick = min if metric.split("@")[0] in LOWER_IS_BETTER else max
        return pick(scored, key=lambda pair: pair[1])

    def to_markdown_text(self) -> str:
        k = self.chosen_k()
        lines = [f"# Offline evaluation: {self.protocol}", "", f"Created {self.created_at}.", ""]
        if self.options:
            lines += ["## Protocol", ""]
            lines += [f"- `{key}`: {_jsonable(value)}" for key, value in self.options.items()]
            lines.append("")
        if self.dataset:
            lines += ["## Data", ""]
            lines += [f"- {key}: {_jsonable(value)}" for key, value in self.dataset.items()]
            lines.append("")
        if k is None or not self.models:
            lines += ["No model results.", ""]
            return "\n".join(lines)
        lines += ["## Accuracy", "", *self._table(ACCURACY, k), ""]
        lines += ["## Trade-offs", "", *self._table(TRADE_OFFS, k), ""]
        for name in TRADE_OFFS:
            best = self._best(f"{name}@{k}")
            if best is not None:
                word = "lowest" if name in LOWER_IS_BETTER else "highest"
                lines.append(
                    f"- **{name}@{k}** — {TRADE_OFF_NOTES[name]}; {word}: {best[0]} ({best[1]:.4f})"
                )
        best_accuracy = self._best(f"ndcg@{k}")
        if best_accuracy is not None:
            lines.append(
                f"- most accurate by ndcg@{k}: {best_accuracy[0]} ({best_accuracy[1]:.4f})"
            )
        lines.append("")
        if self.timings:
            phases = sorted({phase for timing in self.timings.values() for phase in timing})
            lines += ["## Timings (seconds)", ""]
            lines.append("| model | " + " | ".join(phases) + " |")
            lines.append("|---|" + "---:|" * len(phases))
            for model, timing in self.timings.items():
                cells = [f"{timing[phase]:.3f}" if phase in timing else "-" for phase in phases]
                lines.append("| " + " | ".join([model, *cells]) + " |")
            lines.append("")
        return "\n".join(lines)

    def to_markdown(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_markdown_text())
        return target

    def figure(self) -> Figure:
        """Grouped bars, one group per metric at the main K and one bar per model:
        accuracy on the left, the 0..1 trade-offs on the right (novelty, in bits, is only
        in the tables). Built on a bare ``Figure`` so no GUI backend is ever touched."""
        k = self.chosen_k()
        figure = Figure(figsize=(12, 4.5), layout="constrained")
        FigureCanvasAgg(figure)
        panels = (("accuracy", ACCURACY), ("trade-offs", CHARTED_TRADE_OFFS))
        axes = figure.subplots(1, 2, width_ratios=[len(ACCURACY), len(CHARTED_TRADE_OFFS)])
        models = list(self.models)
        width = 0.8 / max(1, len(models))
        for axis, (title, names) in zip(axes, panels, strict=True):
            axis.set_title(f"{title} @ {k}" if k is not None else title)
            axis.set_xticks(range(len(names)), list(names))
            top = 1.0
            for offset, model in enumerate(models):
                heights = []
                for name in names:
                    value = self.models[model].get(f"{name}@{k}", float("nan"))
                    heights.append(value if math.isfinite(value) else 0.0)
                positions = [i - 0.4 + width * (offset + 0.5) for i in range(len(names))]
                axis.bar(positions, heights, width, label=model)
                top = max(top, *heights)
            axis.set_ylim(0, top * 1.05)
            axis.grid(axis="y", alpha=0.3)
        if models:
            axes[0].legend(loc="upper right", fontsize="small")
        figure.suptitle(f"{self.namespace}* — {self.protocol}")
        return figure

    def to_png(self, path: str | Path, dpi: int = 100) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.figure().savefig(target, dpi=dpi, format="png")
        return target
