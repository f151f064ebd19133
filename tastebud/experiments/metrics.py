"""Events and exposures to the per-user samples the statistics read (``ExperimentData``).

Who is in the experiment: the users (``user_id``, else the anonymous ``session_id``) with a
counted exposure, one whose ``experiment`` is the key and whose ``variant`` is a variant of
the definition, served in [start, min(end, now)). A user seen in two variants is a bug:
counted (``multiple_variant_users``) and left out of everything. Each user's values start at
their first exposure (``first_day`` says which day of the experiment that was):

* events measures (``attribution``): events naming one of the experiment's lists count
  exactly; events naming no list count within the metric's window after an exposure;
* exposures measures (``served``): the user's counted exposures (lists, items shown, empty
  lists, latency, intra-list diversity as the share of distinct creators);
* the pre-period (the ``pre_period_days`` before the first exposure) gives the same measure
  before the experiment, CUPED's covariate, for metrics whose every measure has one.

Sources (``sources``): Parquet from the embedded stores or ``tastebud export events``
(PostgreSQL), Arrow tables and streams, or a callable (since, until) that reads the period:
the event store through ``events_reader``, an exposure log through its ``scan``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from tastebud.config import ExperimentSettings, MeasureSpec, MetricSpec, Settings
from tastebud.experiments import attribution, served, sources
from tastebud.experiments.definition import Experiment
from tastebud.experiments.exposure import EXPOSURE_SCHEMA
from tastebud.experiments.samples import ExperimentData, MetricSample, VariantSample
from tastebud.experiments.sources import Source, SourceFactory
from tastebud.schemas import EVENT_SCHEMA

DAY_US = 86_400_000_000
# DuckDB's share of memory (the event pass's joins and per-session aggregates spill beyond
# it): 10M exposures and 20M events take 37 s in 2.6 GB against 32 s in 8.4 GB unbounded
# (docs/benchmarks.md, experiment metrics).
MEMORY_MB = 2_048
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NoExposures(ValueError):
    """The experiment has no counted exposure yet: there is nothing to analyze."""


def experiment_data(
    experiment: Experiment,
    settings: ExperimentSettings | Settings,
    events: Source | SourceFactory,
    exposures: Source | SourceFactory,
    *,
    catalog_size: int,
    now: datetime,
    creators: Mapping[str, str] | None = None,
    metrics: Sequence[str] | None = None,
    memory_mb: int | None = MEMORY_MB,
) -> ExperimentData:
    """The per-user samples of ``metrics`` (default: every configured metric) as of ``now``.

    ``creators`` maps item ids to their creator (diversity); ``catalog_size`` is the active
    catalog (coverage's denominator). DuckDB keeps within ``memory_mb`` (None: its default,
    80% of the machine) and spills the rest to a temporary folder. Raises ``NoExposures``
    when no user was exposed, and ValueError naming the metric when one is unknown."""
    config = settings.experiments if isinstance(settings, Settings) else settings
    specs = _chosen(config, metrics, now, catalog_size, memory_mb)
    start = experiment.start or EPOCH
    stop = min(experiment.end or now, now)
    pre = timedelta(days=config.pre_period_days)
    pre_us = int(config.pre_period_days * DAY_US)
    names = [variant.name for variant in experiment.variants]
    with tempfile.TemporaryDirectory(prefix="tastebud-metrics-") as spill:
        connection = sources.connect(spill, memory_mb)
        try:
            exposure_source = sources.resolve(exposures, max(start - pre, EPOCH), stop)
            exposure_sql = sources.register(
                connection, "exposure_source", exposure_source, schema=EXPOSURE_SCHEMA, once=False
            )
            assignment = served.assign(connection, exposure_sql, experiment.key, names, start, stop)
            if assignment.first_us is None:
                raise NoExposures(
                    f"experiment {experiment.key!r} has no exposures in "
                    f"[{start.isoformat()}, {stop.isoformat()})"
                )
            columns = [*served.COLUMNS, "items", "latency_ms"]
            lists = served.read_lists(
                connection,
                sources.read_ahead(sources.chunks(exposure_source, columns, "items")),
                served.ItemCodes(creators or {}),
                assignment,
                key=experiment.key,
                start=start,
                stop=stop,
                pre_us=pre_us,
            )
            since = EPOCH + timedelta(microseconds=assignment.first_us - pre_us)
            measured = _measure(connection, specs, events, assignment, since, now, pre_us)
            data = _assemble(
                connection, experiment, specs, assignment, measured, lists, catalog_size, stop
            )
        finally:
            connection.close()
    return data


def _chosen(
    config: ExperimentSettings,
    names: Sequence[str] | None,
    now: datetime,
    catalog_size: int,
    memory_mb: int | None,
) -> dict[str, MetricSpec]:
    """The metrics asked for, once the arguments are checked."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if catalog_size < 0:
        raise ValueError("catalog_size must be >= 0")
    if memory_mb is not None and memory_mb < 64:
        raise ValueError("memory_mb must be >= 64")
    if names is None:
        return dict(config.metrics)
    unknown = [name for name in names if name not in config.metrics]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; known: {sorted(config.metrics)}")
    return {name: config.metrics[name] for name in names}


def _event_measure(spec: MetricSpec, measure: MeasureSpec) -> attribution.EventMeasure:
    return attribution.EventMeasure(tuple(measure.events), measure.aggregate, spec.window_hours)


Arrays = dict[str, np.ndarray]


def _measure(
    connection: duckdb.DuckDBPyConnection,
    specs: dict[str, MetricSpec],
    events: Source | SourceFactory,
    assignment: served.Assignment,
    since: datetime,
    now: datetime,
    pre_us: int,
) -> tuple[Arrays, dict[attribution.EventMeasure, tuple[np.ndarray, np.ndarray]]]:
    """Exposure aggregates per user, and each events measure (post, pre) per user."""
    wanted: list[attribution.EventMeasure] = []
    for spec in specs.values():
        for measure in (spec.numerator, spec.denominator):
            if measure is not None and measure.source == "events":
                event_measure = _event_measure(spec, measure)
                if event_measure not in wanted:
                    wanted.append(event_measure)
    per_user = served.per_user(connection, assignment.total)
    if not wanted:
        return per_user, {}
    event_source = sources.resolve(events, since, now)
    event_sql = sources.register(
        connection, "event_source", event_source, schema=EVENT_SCHEMA, once=True
    )
    counted = attribution.event_measures(
        connection,
        event_sql,
        wanted,
        users=assignment.total,
        since=since,
        until=now,
        pre_us=pre_us,
    )
    return per_user, counted


def _values(
    spec: MetricSpec,
    measure: MeasureSpec,
    measured: tuple[Arrays, dict[attribution.EventMeasure, tuple[np.ndarray, np.ndarray]]],
) -> tuple[np.ndarray, np.ndarray | None]:
    """A measure's (post, pre) per user; pre is None when it has no pre-period form."""
    per_user, events = measured
    if measure.source == "events":
        return events[_event_measure(spec, measure)]
    pre = per_user.get(f"pre_{measure.aggregate}") if measure.has_pre_period else None
    return per_user[measure.aggregate], pre


def _assemble(
    connection: duckdb.DuckDBPyConnection,
    experiment: Experiment,
    specs: dict[str, MetricSpec],
    assignment: served.Assignment,
    measured: tuple[Arrays, dict[attribution.EventMeasure, tuple[np.ndarray, np.ndarray]]],
    lists: served.ListPass,
    catalog_size: int,
    stop: datetime,
) -> ExperimentData:
    """Slice every per-user array into one ``VariantSample`` per variant."""
    first = connection.execute("SELECT first FROM users ORDER BY uid").fetchnumpy()["first"]
    origin = _micros(experiment.start) if experiment.start else int(assignment.first_us or 0)
    first_day = (np.asarray(first, dtype=np.int64) - origin) // DAY_US
    days = max(1, math.ceil((_micros(stop) - origin) / DAY_US))
    bounds = np.cumsum([0, *assignment.users])
    latency_uid, latency = served.latencies(connection)
    cuts = np.searchsorted(latency_uid, bounds)
    distinct = lists.distinct()
    data = ExperimentData(
        key=experiment.key,
        variants=assignment.variants,
        weights=[variant.weight for variant in experiment.variants],
        exposed_users=dict(zip(assignment.variants, assignment.users, strict=True)),
        days=days,
        multiple_variant_users=assignment.multiple,
    )
    for name, spec in specs.items():
        numerator, pre_numerator = _values(spec, spec.numerator, measured)
        denominator = pre_denominator = None
        if spec.denominator is not None:
            denominator, pre_denominator = _values(spec, spec.denominator, measured)
        with_pre = spec.has_pre_period
        samples: dict[str, VariantSample] = {}
        for index, variant in enumerate(assignment.variants):
            part = slice(bounds[index], bounds[index + 1])
            samples[variant] = VariantSample(
                numerator=numerator[part],
                denominator=None if denominator is None else denominator[part],
                pre_numerator=pre_numerator[part]
                if with_pre and pre_numerator is not None
                else None,
                pre_denominator=(
                    pre_denominator[part] if with_pre and pre_denominator is not None else None
                ),
                first_day=first_day[part],
                values=latency[cuts[index] : cuts[index + 1]] if spec.kind == "quantile" else None,
                distinct=distinct[index] if spec.kind == "coverage" else None,
                catalog=catalog_size if spec.kind == "coverage" else None,
            )
        data.metrics[name] = MetricSample(name, spec, samples)
    return data


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def exposures_from_log(log: object, since: datetime, until: datetime) -> pa.Table:
    """An exposure log's ``scan(since, until)`` (exp-serving's), checked against the schema:
    the boundary where the integrator plugs the real log in (``exposures=log.scan`` works
    too; this names the contract)."""
    table = log.scan(since, until)  # type: ignore[attr-defined]
    missing = sorted(set(EXPOSURE_SCHEMA.names) - set(table.schema.names))
    if missing:
        raise ValueError(f"exposure log rows lack {missing}")
    return table
