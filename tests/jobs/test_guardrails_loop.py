"""The seeded guardrail breach, closed loop (issue 18, part 7): a generated world ingested and
served by uvicorn, an experiment whose treatment starves its candidate sources (one-item
lists) started over HTTP, simulated users asking for lists and acting on them; then one run
of the ``guardrails`` job pauses the treatment, so the next lists its users get are
control's. The job runs every ``guardrails_minutes``: one run after the traffic is one
interval."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from api.experiment_lab import LIST_LENGTH, STARVED
from api.gateway_testing import LiveServer, make_keys
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import Settings, load_settings
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.jobs import open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.runner import JobRunner
from tastebud.simulation.loop import ClosedLoop, LoopConfig
from tastebud.simulation.users import UserModel
from tastebud.stores import Stores, open_stores

runner = CliRunner()
DEFINITION = {
    "key": "starve",
    "variants": [
        {"name": "control", "weight": 0.5},
        {"name": "starved", "weight": 0.5, "ranking": STARVED},
    ],
    "goals": ["click_through"],
    "guardrails": [{"metric": "list_length", "threshold": 3, "min_users": 10}],
}


def test_a_seeded_breach_is_paused_within_one_guardrails_interval(
    home: Path, tmp_path: Path
) -> None:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    generate_world(WorldSpec.ending(end, users=80, items=60, days=2, seed=5), tmp_path / "world")
    ingested = runner.invoke(app, ["ingest", str(tmp_path / "world")])
    assert ingested.exit_code == 0, ingested.output
    model = UserModel.from_truth(tmp_path / "world")
    settings = load_settings(
        online_url="memory://",
        gateway={"key_cache_seconds": 0.0},
        experiments={
            "poll_seconds": 0.2,
            "exposure_flush_seconds": 0.2,
            "metrics": {"list_length": LIST_LENGTH},
        },
    )
    stores = open_stores(settings)
    history = open_run_history(settings)
    try:
        keys = make_keys(stores.database)
        with LiveServer(settings) as server:
            admin = {"X-API-Key": keys["admin"]}
            with httpx.Client(base_url=server.url, headers=admin, timeout=30) as http:
                assert http.put("/v1/experiments/starve", json=DEFINITION).status_code == 201
                assert http.post("/v1/experiments/starve/start").status_code == 200
                time.sleep(0.5)  # two polls: every worker serves it
                loop = ClosedLoop(model, http, LoopConfig(users=60, days=1, k=8, seed=7))
                summary = loop.run()
                truth = summary.variants
                assert truth["starve/starved"].shown == truth["starve/starved"].lists  # one each
                assert truth["starve/control"].shown == 8 * truth["starve/control"].lists
                counted = truth["starve/starved"].lists + truth["starve/control"].lists
                _wait_for_exposures(settings, stores, counted)

                jobs = JobRunner(
                    settings, build_registry(settings=settings), history, stores=stores
                )
                outcome = jobs.run("guardrails", end=datetime.now(UTC))
                assert outcome.status == "succeeded", outcome.error
                assert outcome.output["paused"] == ["starve:starved"], outcome.output
                starved_user = next(iter(truth["starve/starved"].users))
                deadline = time.monotonic() + 5
                while True:  # its users get control within one watcher poll
                    answer = http.get(f"/v1/users/{starved_user}/recommendations?k=8").json()
                    if answer["variant"] == "control" or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                assert answer["variant"] == "control" and len(answer["items"]) == 8
    finally:
        history.close()
        stores.close()


def _wait_for_exposures(settings: Settings, stores: Stores, count: int) -> None:
    """Until the server's exposure log has written ``count`` exposures of the experiment."""
    log = open_exposure_log(settings, stores.database)
    try:
        deadline = time.monotonic() + 10
        now = datetime.now(UTC)
        while True:
            rows = log.scan(now - timedelta(days=1), now + timedelta(hours=1))
            written = sum(1 for key in rows["experiment"].to_pylist() if key == "starve")
            if written >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert written >= count, f"{written} of {count} exposures written"
    finally:
        log.close()
