"""Running a view's source as of a moment: SQL through DuckDB over the events of its window
and the catalog, or a Python transform. Either way the result is conformed to the view's
schema (entity_id, event_timestamp = as_of, one typed column per feature).

Every source sees only events strictly before ``as_of``, and the rows it returns carry
``as_of`` as their event time: that is what makes point-in-time reads leak-free.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import Settings
from tastebud.engines import EngineError, engine_name
from tastebud.features.views import (
    ARROW_TYPES,
    ENTITY_KEYS,
    EntityPythonSource,
    FeatureView,
    PythonSource,
)
from tastebud.signals.catalog import catalog_table
from tastebud.signals.window import EventWindow, Window, engine
from tastebud.signals.window import source as events_of
from tastebud.stores import EventQuery, Stores

Transform = Callable[["TransformContext"], pa.Table | None]


class TransformError(RuntimeError):
    """A source failed or returned a table that does not match its view."""


@dataclass
class TransformContext:
    """What a source computes with; ``window`` is the event window ending at ``as_of`` that
    the shared signals (``tastebud.signals``: popularity, affinity) compute over."""

    view: FeatureView
    as_of: datetime
    settings: Settings
    stores: Stores
    window: Window

    @cached_property
    def catalog_items(self) -> pa.Table:
        return catalog_table(self.stores.catalog)


def context_for(
    view: FeatureView,
    as_of: datetime,
    settings: Settings,
    stores: Stores,
    job: Window | None = None,
) -> TransformContext:
    """The context of one snapshot; inside a job (``materialize``, ``backfill``) its window
    keeps the job's name (so its engine) and cancellation check, and ends at ``as_of``."""
    if job is None:
        window = EventWindow(f"features:{view.name}", as_of, as_of, settings, stores)
    else:
        window = EventWindow(job.job_name, job.start, as_of, settings, stores, job.check)
    return TransformContext(view, as_of, settings, stores, window)


def load_transform(spec: str) -> Callable[..., pa.Table | None]:
    module_name, _, function = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        found: Callable[..., pa.Table | None] = getattr(module, function)
    except (ImportError, AttributeError) as error:
        raise TransformError(f"transform {spec!r} cannot be imported: {error}") from None
    return found


def compute_view(context: TransformContext) -> pa.Table:
    """The view's rows as of ``context.as_of`` (possibly none), conformed to its schema."""
    view = context.view
    if isinstance(view.source, PythonSource):
        table = load_transform(view.source.transform)(context)
    elif isinstance(view.source, EntityPythonSource):
        table = _run_by_entity(context)
    else:
        table = _run_sql(context)
    if table is None or table.num_rows == 0:
        return view.arrow_schema().empty_table()
    return conform(view, table, context.as_of)


def conform(view: FeatureView, table: pa.Table, as_of: datetime) -> pa.Table:
    """Cast a source's output to the view's schema; a missing or mistyped column is a
    TransformError naming the view and the column."""
    if "entity_id" not in table.column_names:
        raise TransformError(f"view {view.name}: the source returned no entity_id column")
    columns = [pc.cast(table.column("entity_id"), pa.string())]
    if "event_timestamp" in table.column_names:
        stamps = pc.cast(table.column("event_timestamp"), ARROW_TYPES["timestamp"])
    else:
        stamps = pa.array([as_of] * table.num_rows, ARROW_TYPES["timestamp"])
    columns.append(stamps)
    for spec in view.features:
        if spec.name not in table.column_names:
            raise TransformError(f"view {view.name}: the source returned no {spec.name!r} column")
        try:
            columns.append(pc.cast(table.column(spec.name), ARROW_TYPES[spec.dtype]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise TransformError(
                f"view {view.name}: column {spec.name!r} is not {spec.dtype}: {error}"
            ) from None
    conformed = pa.Table.from_arrays(columns, schema=view.arrow_schema())
    return conformed.filter(pc.is_valid(conformed.column("entity_id")))


def _reads(query: str, table: str) -> bool:
    """Whether the query reads ``table`` (FROM/JOIN), so unused inputs are never loaded."""
    return re.search(rf"\b(from|join)\s+{table}\b", query, re.IGNORECASE) is not None


def _run_by_entity(context: TransformContext) -> pa.Table | None:
    """The view's function over its window's events grouped by its entity: on Spark, once
    per partition on the executors; locally, once over the whole window. An entity returned
    twice means the function is not per entity (Spark's split would change its rows)."""
    view, as_of = context.view, context.as_of
    source = view.source
    assert isinstance(source, EntityPythonSource)
    func = functools.partial(load_transform(source.transform), as_of=as_of)
    start = as_of - timedelta(days=source.window_days)
    if engine_name(context.settings, context.window.job_name) == "spark":
        try:
            table = engine(context.window).by_entity(
                events_of(context.window), func, key=ENTITY_KEYS[view.entity], start=start,
                as_of=as_of,
            )  # fmt: skip
        except EngineError as error:
            raise EngineError(f"view {view.name}: {error}") from error
    else:
        events = context.stores.events.read_arrow(EventQuery(start=start, end=as_of))
        table = func(events) if events.num_rows else None
    if table is not None and "entity_id" in table.column_names:
        ids = table.column("entity_id")
        if len(pc.unique(ids)) != len(ids):
            raise TransformError(
                f"view {view.name}: its function returned an entity more than once; an "
                "entity_python transform returns one row per entity, from that entity's "
                "events only"
            )
    return table


def _run_sql(context: TransformContext) -> pa.Table | None:
    """The view's SQL (DuckDB's dialect) in DuckDB, or translated for the window's engine
    when that is Spark (inside ``materialize``/``backfill`` on engine spark)."""
    source = context.view.source
    assert not isinstance(source, PythonSource)
    start = context.as_of - timedelta(days=source.window_days)
    query = source.query
    if engine_name(context.settings, context.window.job_name) == "spark":  # one SQL, two engines
        items = context.catalog_items if _reads(query, "items") else None
        return engine(context.window).sql_view(
            events_of(context.window), query, start=start, as_of=context.as_of, items=items
        )
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        if _reads(query, "events"):
            events = context.stores.events.read_arrow(EventQuery(start=start, end=context.as_of))
            connection.register("events", events)
        if _reads(query, "items"):
            connection.register("items", context.catalog_items)
        params = {"as_of": context.as_of} if "$as_of" in query else {}
        try:
            return connection.sql(query, params=params).to_arrow_table()
        except duckdb.Error as error:
            raise TransformError(f"view {context.view.name}: SQL failed: {error}") from None
    finally:
        connection.close()
