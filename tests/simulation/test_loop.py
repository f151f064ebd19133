"""The closed loop against a real gateway: a tiny generated world ingested into the embedded
store, served by uvicorn in a thread; simulated users ask for lists over HTTP and their
events land in the store, dated in simulated time, naming their list and position. Then
``tastebud simulate --local`` end to end, and its refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api.gateway_testing import LiveServer, gateway_settings, make_keys
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.data.synthetic_world import DEVICES
from tastebud.simulation.loop import ClosedLoop, LoopConfig, plan_visits
from tastebud.simulation.users import UserModel, micros
from tastebud.stores import open_database
from tastebud.stores.base import EventQuery

runner = CliRunner()


class FakeClock:
    """Real time that only ``sleep`` moves: the pacing is checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_loop_sends_what_users_do_with_served_lists(home: Path, tmp_path: Path) -> None:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    spec = WorldSpec.ending(end, users=40, items=60, days=2, seed=4)
    generate_world(spec, tmp_path / "world")
    ingested = runner.invoke(app, ["ingest", str(tmp_path / "world")])
    assert ingested.exit_code == 0, ingested.output
    model = UserModel.from_truth(tmp_path / "world")
    start = end - timedelta(days=1)
    config = LoopConfig(
        users=25, days=1, k=8, speed=86_400 / 2, start=start, seed=3, dates="simulated"
    )
    visits = plan_visits(model, config, micros(start))
    assert visits == plan_visits(model, config, micros(start))  # seeded
    assert len({v.user for v in visits}) <= 25 and len(visits) >= 10

    settings = gateway_settings(home)
    with open_database(settings.resolved_database_url) as database:
        before = database.events.count()
        keys = make_keys(database)
        clock = FakeClock()
        with LiveServer(settings) as server:
            headers = {"X-API-Key": keys["admin"]}
            with httpx.Client(base_url=server.url, headers=headers) as http:
                loop = ClosedLoop(model, http, config, sleep=clock.sleep, clock=clock)
                summary = loop.run()
                # Dated when sent (the default): between the run's start and its end.
                before_real = datetime.now(UTC)
                real = ClosedLoop(model, http, LoopConfig(users=10, days=1, seed=4)).run()
                after_real = datetime.now(UTC)
        # Paced at two simulated days per second: the last visit waits until its time.
        last = (visits[-1].at_us - micros(start)) / 1e6
        assert clock.now == pytest.approx(last / config.speed, abs=1e-6)

        assert summary.requests == len(visits) and summary.failed_requests == 0
        assert summary.events_sent > 0 and summary.events_rejected == 0
        assert summary.events_accepted == summary.events_sent
        stored = [
            e
            for e in database.events.scan(EventQuery(start=start))
            if e.event_id.startswith("sim3.")
        ]
        dated = database.events.scan(EventQuery(start=before_real - timedelta(seconds=1)))
        dated = [e for e in dated if e.event_id.startswith("sim4.")]
        assert len(dated) == real.events_accepted > 0 and real.start >= before_real - timedelta(
            seconds=1
        )
        assert all(before_real <= e.timestamp <= after_real for e in dated)
        added = database.events.count() - before
        assert added - len(dated) == len(stored) == summary.events_sent
    variant = summary.variants["-"]  # no experiment is running
    assert variant.lists == len(visits) and variant.shown == 8 * len(visits)
    assert variant.clicks == sum(e.event_type == "click" for e in stored)
    assert variant.plays == sum(e.event_type == "play" for e in stored)
    assert {e.event_type for e in stored} <= {"click", "play", "skip", "like", "purchase"}
    for event in stored:
        assert start <= event.timestamp < summary.end + timedelta(hours=1)
        assert 1 <= event.context["position"] <= 8
        assert event.user_id in variant.users
        assert event.device_type == DEVICES[model.world.user_device[int(event.user_id[1:])]]
        if summary.with_list_id == summary.requests:  # serving names its lists
            assert event.context["list_id"]
    document = summary.as_dict()
    truth = document["variants"]["-"]
    assert 0 < truth["true_click_through"] < 1 and 0 < truth["true_utility_per_user"] < 1
    assert truth["click_through"] == variant.clicks / variant.shown


def test_simulate_local_end_to_end(home: Path, tmp_path: Path) -> None:
    """With an experiment (the A/A example): created, started, met, stopped, analyzed."""
    world = ["--world-users", "40", "--world-items", "50", "--world-days", "3"]
    aa = Path(__file__).parents[2] / "examples" / "experiments" / "aa.yaml"
    run = ["--users", "30", "--days", "2", "--k", "5", "--experiment", str(aa)]
    report = ["--report", str(tmp_path / "report"), "--out", str(tmp_path / "run.json")]
    result = runner.invoke(app, ["simulate", "--local", "--json", *world, *run, *report])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert json.loads((tmp_path / "run.json").read_text()) == summary
    assert summary["requests"] > 0 and summary["failed_requests"] == 0
    assert summary["events"]["accepted"] == summary["events"]["sent"]
    assert summary["experiments"] == ["simulated-aa"]
    lists = sum(variant["lists"] for variant in summary["variants"].values())
    assert lists == summary["requests"]
    analysis, truth = summary["experiment"]["analysis"], summary["experiment"]["truth"]
    assert analysis["experiment"] == "simulated-aa" and set(truth) == {"control", "same"}
    assert sum(analysis["exposed_users"].values()) == sum(v["users"] for v in truth.values())
    assert (tmp_path / "report" / "report.md").is_file()
    assert not list(Path(home).glob("worlds"))  # the local home was temporary


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--users", "5"], "either --url"),
        (["--local", "--url", "http://127.0.0.1:1"], "either --url"),
        (["--url", "http://127.0.0.1:1", "--users", "0"], "--users"),
        (["--url", "http://127.0.0.1:1", "--speed", "-1"], "--speed"),
        (["--url", "http://127.0.0.1:1", "--dates", "fake"], "--dates"),
        (["--url", "http://127.0.0.1:1", "--start", "soon"], "--start"),
        (["--url", "http://127.0.0.1:1"], "--world: no truth.json"),
        (["--local", "--world", "x"], "--world"),
        (["--local", "--world-users", "1"], "--world-users"),
        (["--url", "http://127.0.0.1:1", "--experiment", "aa.yaml"], "--experiment needs --local"),
        (["--local", "--report", "out"], "--report: only with --experiment"),
        (["--local", "--experiment", "missing.yaml"], "--experiment: cannot read"),
        (["--local", "--experiment", "list.yaml"], "--experiment: list.yaml holds no experiment"),
    ],
)
def test_simulate_refuses_bad_input(home: Path, arguments: list[str], message: str) -> None:
    Path("list.yaml").write_text("- key: a\n")
    result = runner.invoke(app, ["simulate", *arguments], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_simulate_says_when_the_gateway_is_unreachable(home: Path, tmp_path: Path) -> None:
    generate_world(WorldSpec(users=10, items=12, days=1, seed=1), tmp_path)
    target = ["--url", "http://127.0.0.1:9", "--world", str(tmp_path)]
    result = runner.invoke(
        app, ["simulate", *target, "--users", "10", "--days", "3"], terminal_width=200
    )
    assert result.exit_code == 3, result.output
    assert "127.0.0.1:9" in result.output
