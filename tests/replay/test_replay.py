"""``tastebud replay``: a recorded log sent again in time order, into the stores (embedded and
PostgreSQL) or through a live HTTP gateway, paced, shifted to end now, bad rows reported."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from api.gateway_testing import LiveServer, gateway_settings, make_keys
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.data.loaders import open_sources
from tastebud.replay import (
    ReplayError,
    ReplayInterrupted,
    ReplayPlan,
    StoreTarget,
    TargetFailed,
    load_events,
    replay,
    schedule,
)
from tastebud.stores import EventQuery, open_database, open_stores

runner = CliRunner()
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def write_log(path: Path, *, bad: bool = True) -> Path:
    """Twelve events over 11 hours, written out of order, and two broken rows."""
    rows = ["user_id,item_id,event_type,timestamp"]
    for hour in (5, 0, 3, 1, 2, 4, 6, 7, 8, 9, 10, 11):
        moment = (T0 + timedelta(hours=hour)).isoformat()
        rows.append(f"u{hour % 3},i{hour},play,{moment}")
    if bad:
        rows.insert(4, "u9,i9,teleport,2024-03-01T00:30:00+00:00")  # line 5: unknown type
        rows.insert(8, "u9,,play,2024-03-01T00:40:00+00:00")  # line 9: no item
    path.write_text("\n".join(rows) + "\n")
    return path


class FakeClock:
    """Time that passes only when the replay sleeps, so pacing is checked exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_plan_refuses_what_cannot_run() -> None:
    with pytest.raises(ReplayError, match="rate-pattern must be one of"):
        ReplayPlan(pattern="burst")
    with pytest.raises(ReplayError, match="at least 1"):
        ReplayPlan(speed=0.5)
    with pytest.raises(ReplayError, match="needs --rate"):
        ReplayPlan(pattern="poisson")
    with pytest.raises(ReplayError, match="--rate applies"):
        ReplayPlan(rate=10)
    with pytest.raises(ReplayError, match="--from must be before --to"):
        ReplayPlan(start=T0, end=T0)


def test_rejections_are_listed_in_line_order(home: Path, tmp_path: Path) -> None:
    """Rows the reader refused (a wrong field count) were listed before the rows validation
    refused, whatever their lines: 25, 26, 23, 24 (the bad-input audit)."""
    path = tmp_path / "log.csv"
    path.write_text(
        "user_id,item_id,event_type,timestamp\n"
        "u1,i1,play,1714557600\n"
        "u1,,play,1714557601\n"
        "u1,i1,play,1714557602,extra\n"
        "u1,i1,nope,1714557603\n"
        "u1,i1\n"
    )
    loaded = load_events(open_sources(path), load_settings(), ReplayPlan())
    assert [r.row for r in loaded.rejections] == [3, 4, 5, 6]


def test_schedules_follow_the_pattern() -> None:
    hours = np.array([0, 1, 1, 3], dtype=np.int64) * 3_600_000_000
    assert schedule(hours, ReplayPlan(speed=3600)).tolist() == [0, 1, 1, 3]
    assert schedule(hours, ReplayPlan(speed=0)).tolist() == [0, 0, 0, 0]
    assert schedule(hours, ReplayPlan(pattern="uniform", rate=2)).tolist() == [0, 0.5, 1, 1.5]
    poisson = schedule(np.zeros(20_000, np.int64), ReplayPlan(pattern="poisson", rate=100))
    assert poisson[0] == 0 and np.all(np.diff(poisson) >= 0)
    assert poisson[-1] / 20_000 == pytest.approx(0.01, rel=0.05)  # mean gap 1/rate


def test_loading_reports_bad_rows_by_line_and_orders_by_time(home: Path, tmp_path: Path) -> None:
    settings = load_settings()
    sources = open_sources(write_log(tmp_path / "log.csv"))
    loaded = load_events(sources, settings, ReplayPlan(start=T0 + timedelta(hours=1)))
    assert loaded.rows_read == 14 and loaded.rejected == 2
    assert {(r.row, r.reason) for r in loaded.rejections} == {
        (5, "unknown_event_type"),
        (9, "invalid_id"),
    } or {r.row for r in loaded.rejections} == {5, 9}
    assert loaded.outside_window == 1  # hour 0
    items = loaded.table.column("item_id").to_pylist()
    assert items == [f"i{hour}" for hour in range(1, 12)]


def test_a_paced_replay_into_the_store_is_shifted_to_end_when_it_does(
    home: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    loaded = load_events(open_sources(write_log(tmp_path / "log.csv")), settings, ReplayPlan())
    fake = FakeClock()
    wall = 1_800_000_000.0
    plan = ReplayPlan(speed=3600, batch_size=5)
    with open_stores(settings) as stores:
        report = replay(
            loaded.table,
            StoreTarget(stores),
            plan,
            clock=fake.clock,
            sleep=fake.sleep,
            wall=lambda: wall,
        )
        stored = stores.events.scan(EventQuery())
    assert (report.sent, report.accepted, report.duplicates, report.rejected) == (12, 12, 0, 0)
    # One recorded hour per second: the replay lasts 11 s and never runs ahead of schedule.
    assert fake.now == pytest.approx(11.0) and report.max_lag_seconds == pytest.approx(0.0)
    moments = sorted(event.timestamp for event in stored)
    assert moments[-1] == datetime.fromtimestamp(wall + 11, UTC)
    assert moments[0] == moments[-1] - timedelta(hours=11)
    assert report.shift_seconds == pytest.approx(wall + 11 - (T0 + timedelta(hours=11)).timestamp())


def test_replaying_twice_to_the_same_end_stores_nothing_twice(home: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.csv")
    command = ["replay", str(log), "--speed", "0", "--ends-at", "2025-01-01T00:00:00Z", "--json"]
    first = runner.invoke(app, command)
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    assert (document["read"], document["invalid"], document["accepted"]) == (14, 2, 12)
    again = json.loads(runner.invoke(app, command).stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 12)
    with open_database(load_settings().resolved_database_url) as database:
        events = database.events.scan(EventQuery())
    assert len(events) == 12
    assert max(e.timestamp for e in events) == datetime(2025, 1, 1, tzinfo=UTC)


def test_the_command_says_what_it_rejected_and_refuses_bad_options(
    home: Path, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "log.csv")
    shown = runner.invoke(app, ["replay", str(log), "--speed", "0"])
    assert shown.exit_code == 0, shown.output
    assert "2 of 14 rows are not valid events" in shown.output and "line 5" in shown.output
    assert "sent 12 of 12 events" in shown.output
    for options, message in [
        (["--speed", "0.2"], "at least 1"),
        (["--rate-pattern", "uniform"], "needs --rate"),
        (["--from", "yesterday-ish"], "--from"),
        (["--key", "tb_x"], "--key applies to --url"),
        # A URL that names no gateway is bad usage (2), not an unreachable gateway (3).
        (["--url", "notaurl"], "--url must be http:// or https://"),
        (["--url", "ftp://127.0.0.1:9"], "--url must be http:// or https://"),
        (["--url", "http://"], "--url names no host"),
        (["--url", "http://127.0.0.1:notaport"], "--url has a bad port"),
    ]:
        refused = runner.invoke(app, ["replay", str(log), *options])
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert "Traceback" not in refused.output
    missing = runner.invoke(app, ["replay", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,item_id,event_type,timestamp\nu1,,play,2024-01-01T00:00:00Z\n")
    nothing = runner.invoke(app, ["replay", str(empty)])
    assert nothing.exit_code == 2 and "nothing to replay" in nothing.output


def test_a_target_that_fails_midway_keeps_what_it_took_and_says_where_to_resume(
    home: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    loaded = load_events(
        open_sources(write_log(tmp_path / "log.csv", bad=False)), settings, ReplayPlan()
    )

    class StoreThatFails(StoreTarget):
        """The real store, which goes away after two batches."""

        batches = 0

        def send(self, events: pa.Table):  # type: ignore[no-untyped-def]
            self.batches += 1
            if self.batches > 2:
                raise TargetFailed("the event store failed: connection lost")
            return super().send(events)

    with open_stores(settings) as stores:
        with pytest.raises(ReplayInterrupted) as stopped:
            replay(loaded.table, StoreThatFails(stores), ReplayPlan(speed=0, batch_size=5))
        assert stores.events.count() == 10
    assert stopped.value.report.sent == 10
    assert stopped.value.resume_from == T0 + timedelta(hours=10)
    assert "connection lost" in stopped.value.cause


@pytest.mark.postgres
def test_replay_into_postgresql(home: Path, tmp_path: Path, postgres_url: str) -> None:
    log = write_log(tmp_path / "log.csv")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TASTEBUD_DATABASE_URL", postgres_url)
        result = runner.invoke(app, ["replay", str(log), "--speed", "0", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["accepted"] == 12
        with open_database(load_settings().resolved_database_url) as database:
            assert database.events.count() == 12


def test_replay_through_a_live_gateway(home: Path, tmp_path: Path) -> None:
    settings = gateway_settings(home)
    (tmp_path / "films").mkdir()
    log = write_log(tmp_path / "films" / "log.csv")
    with open_database(settings.resolved_database_url) as database:
        keys = make_keys(database)
        with LiveServer(settings) as server:
            refused = runner.invoke(
                app, ["replay", str(log), "--speed", "0", "--url", server.url, "--key", "tb_bad"]
            )
            assert refused.exit_code == 1 and "401" in refused.output, refused.output
            assert "--from 2024-03-01T00:00:00+00:00" in " ".join(refused.output.split())
            sent = runner.invoke(
                app,
                [
                    "replay",
                    str(log),
                    "--rate-pattern",
                    "uniform",
                    "--rate",
                    "200",
                    "--url",
                    server.url,
                    "--key",
                    keys["ingest"],
                    "--json",
                    "--batch-size",
                    "4",
                ],
            )
            assert sent.exit_code == 0, sent.output
            document = json.loads(sent.stdout)
            assert (document["accepted"], document["rejected"]) == (12, 0)
            assert document["seconds"] >= 11 / 200
        events = database.events.scan(EventQuery())
    assert len(events) == 12
    assert Counter(e.user_id for e in events) == Counter({"u0": 4, "u1": 4, "u2": 4})
    # Stamped to end when the replay started (uniform pattern), not in the future.
    assert max(e.timestamp for e in events) <= datetime.now(UTC)
    nobody = runner.invoke(app, ["replay", str(log), "--url", "http://127.0.0.1:9"])
    assert nobody.exit_code == 3 and "no tastebud gateway answers" in nobody.output
