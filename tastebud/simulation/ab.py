"""An A/B test through the closed loop: put an experiment's definition to a running gateway
and start it (``PUT /v1/experiments/{key}``, ``POST .../start``, an ``admin`` key), wait
for serving to see it, let the loop's users meet it (``tastebud.simulation.loop``), then
analyze what the stores hold and set the truth beside it.

The truth (``truth_by_variant``) is what the simulator knows and the analysis does not: per
variant, the click-through the user model expects of the lists it served (``true``) next
to what the users did (``observed``), and the true relative lift against control. A worse
variant's measured lift on ``click_through`` should have the truth's sign and roughly its
size; an A/A's truth is a lift near zero.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tastebud.client import GatewayError
from tastebud.config import Settings
from tastebud.experiments.analysis import Analysis
from tastebud.experiments.store import ExperimentStore
from tastebud.experiments.stored import analyze_stored
from tastebud.simulation.loop import LoopSummary
from tastebud.stores import open_stores


def read_definition(path: Path) -> dict[str, Any]:
    """An experiment definition from a YAML or JSON file, as the API takes it; ValueError
    saying what is wrong with the file (the gateway checks the definition itself)."""
    # lazy: YAML only for a definition file
    import yaml

    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ValueError(f"{path} is not valid {kind}: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        raise ValueError(f"{path} holds no experiment (a mapping with a key)")
    return data


def start_experiment(
    http: httpx.Client,
    definition: dict[str, Any],
    *,
    settle_seconds: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Create the experiment as a draft and start it through the API (``http`` carries an
    admin key); then wait ``settle_seconds`` (a watcher poll or two) for serving to see it.
    Returns the key; ``GatewayError`` with the gateway's answer when it refuses."""
    key = str(definition["key"])
    for method, path, body in (
        ("PUT", f"/v1/experiments/{key}", definition),
        ("POST", f"/v1/experiments/{key}/start", {"note": "tastebud simulate"}),
    ):
        response = http.request(method, path, json=body)
        if not response.is_success:
            raise GatewayError(response.status_code, "experiment_refused", response.text[:2_000])
    if settle_seconds > 0:
        sleep(settle_seconds)
    return key


def stop_experiment(http: httpx.Client, key: str) -> None:
    """Stop the experiment (its end is set: the analysis reads up to it)."""
    response = http.post(f"/v1/experiments/{key}/stop", json={"note": "tastebud simulate"})
    if not response.is_success:
        raise GatewayError(response.status_code, "experiment_refused", response.text[:2_000])


def analyze_database(settings: Settings, key: str, *, now: datetime) -> Analysis:
    """The analysis of ``key`` from the home's stores as of ``now``
    (``tastebud.experiments.stored``, as ``tastebud experiments analyze`` reads it). Run it
    once the gateway has stopped, its exposures written. Raises ``NothingToAnalyze``."""
    with open_stores(settings) as stores:
        experiments = ExperimentStore(stores.database.sql_backend("experiments"))
        try:
            return analyze_stored(settings, stores, experiments, key, now=now)
        finally:
            experiments.close()


def truth_by_variant(summary: LoopSummary, key: str, control: str) -> dict[str, dict[str, Any]]:
    """Per variant of ``key``: users, lists, the observed and the true click-through, and
    the true relative lift of click-through against ``control``."""
    table: dict[str, dict[str, Any]] = {}
    for name, truth in sorted(summary.variants.items()):
        experiment, _, variant = name.partition("/")
        if experiment != key:
            continue
        row = truth.as_dict()
        table[variant] = {
            "users": row["users"],
            "lists": row["lists"],
            "click_through": row["click_through"],
            "true_click_through": row["true_click_through"],
            "true_utility_per_user": row["true_utility_per_user"],
        }
    base = table.get(control, {}).get("true_click_through")
    for row in table.values():
        value = row["true_click_through"]
        row["true_lift"] = value / base - 1 if base and value is not None else None
    return table
