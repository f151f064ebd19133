"""The experiments page and the impact calculator fed from an experiment, by Streamlit's
AppTest against the live server of the dashboard's world: a real experiment defined and
started over the API, lists served to the world's users (each an exposure) and plays and
clicks posted on them (attributed through ``context.list_id``), and a draft that never
served (no exposures). Pause and resume go through the page with an admin key; a revoked
key and an unreachable server are messages, never a traceback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api.gateway_testing import free_port
from ranking.serving_world import build_world

from dashboard.conftest import EMPTY, KEY, Running, ServedWorld, http
from dashboard.pages import analysis_test, messages, page_test
from dashboard.test_browser import SCREENSHOTS, _rendered
from tastebud.dashboard.experiments import measured_lifts
from tastebud.experiments.analysis import Analysis, analyze
from tastebud.experiments.definition import Experiment
from tastebud.experiments.metrics import experiment_data
from tastebud.experiments.sources import events_reader


def _decisions(shown: dict[str, list[str]]) -> list[str]:
    return [s for kind in ("success", "info", "warning") for s in shown[kind] if "Decision:" in s]


def _frame(test: Any, *columns: str) -> Any:
    """The first table of the page that has ``columns``."""
    return next(f.value for f in test.dataframe if set(columns) <= set(f.value.columns))


def _decisions(shown: dict[str, list[str]]) -> list[str]:
    return [s for kind in ("success", "info", "warning") for s in shown[kind] if "Decision:" in s]


def _frame(test: Any, *columns: str) -> Any:
    """The first table of the page that has ``columns``."""
    return next(f.value for f in test.dataframe if set(columns) <= set(f.value.columns))


def _analysed_here(running: Running) -> Analysis:
    """The experiment analysed in this process from the live server's own exposure log and
    event store (what ``GET /v1/experiments/{key}/analysis`` answers once it is served)."""
    state = running.served.app.state
    log = state.recommendations.experiments.exposures
    log.flush()
    stores = state.tastebud.stores
    with http(running.served, running.served.read_key) as read:
        experiment = Experiment.model_validate(
            read.get(f"/v1/experiments/{KEY}").json()["experiment"]
        )
    settings = running.served.settings
    data = experiment_data(
        experiment, settings, lambda since, until: events_reader(stores.events, since, until),
        log.scan, catalog_size=90, now=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    return analyze(experiment, data, settings.experiments)


def test_the_analysis_draws_lifts_guardrails_cumulative_and_the_decision(
    running: Running,
) -> None:
    analysis = _analysed_here(running)
    assert sum(analysis.exposed_users.values()) == len(running.lists)
    test = analysis_test(analysis.to_json())
    shown = messages(test)
    assert shown["exception"] == [], shown
    assert _decisions(shown) == [
        f"**Decision: {analysis.decision.line}** — {analysis.decision.reason}"
    ]
    assert [w for w in shown["warning"] if "Decision:" not in w] == analysis.warnings
    lifts = _frame(test, "metric", "lift", "low", "high")
    assert {"plays_per_user", "click_through", "empty_lists"} <= set(lifts["metric"])
    plays = lifts[lifts["metric"] == "plays_per_user"].iloc[0]
    assert plays["low"] <= plays["lift"] <= plays["high"]
    guardrails = _frame(test, "metric", "status", "why")
    assert list(guardrails["metric"]) == ["empty_lists"]
    assert any("Sample ratio" in c.value for c in test.caption) or any(
        "Sample ratio mismatch" in e for e in shown["error"]
    )
    assert measured_lifts(analysis)[0].metric == "plays_per_user"  # goals first


def test_the_page_lists_experiments_and_shows_the_running_ones_analysis(
    running: Running,
) -> None:
    served = running.served
    test = page_test("experiments", served.url, served.read_key)
    shown = messages(test)
    assert shown["exception"] == [] and shown["error"] == [], shown
    listed = test.dataframe[0].value.to_dict("records")
    assert [row["key"] for row in listed][:1] == [KEY]  # running before the draft
    assert {row["key"]: row["status"] for row in listed}[EMPTY] == "draft"
    assert test.selectbox(key="experiment").value == KEY
    assert set(running.lists.values()) == {"control", "popular"}
    with http(served, served.read_key) as read:
        served_analysis = read.get(f"/v1/experiments/{KEY}/analysis").json()
    decision = served_analysis["decision"]
    assert _decisions(shown) == [f"**Decision: {decision['line']}** — {decision['reason']}"]
    lifts = _frame(test, "metric", "lift", "low", "high")
    assert {"metric", "variant", "lift", "low", "high", "role"} <= set(lifts.columns)
    assert {"plays_per_user", "click_through", "empty_lists"} <= set(lifts["metric"])
    assert any("Sample ratio" in c.value for c in test.caption) or any(
        "Sample ratio mismatch" in e for e in shown["error"]
    )


def test_an_experiment_with_no_exposures_says_so(running: Running) -> None:
    served = running.served
    test = page_test("experiments", served.url, served.read_key)
    test.selectbox(key="experiment").set_value(EMPTY).run()
    shown = messages(test)
    assert shown["exception"] == [] and shown["error"] == [], shown
    assert any(f"No analysis for {EMPTY} yet" in i for i in shown["info"]), shown
    assert any("nothing to pause or resume" in c.value for c in test.caption)


def test_pause_and_resume_a_variant_need_an_admin_key_a_note_and_a_reviewer(
    running: Running,
) -> None:
    served = running.served
    test = page_test("experiments", served.url, served.read_key)
    test.radio(key="xp-action").set_value("pause")
    test.selectbox(key="xp-target").set_value("popular")
    test.checkbox(key="xp-confirm").check().run()
    assert test.button(key="xp-apply").disabled  # no key, no note yet
    test.text_input(key="xp-admin-key").input(served.read_key)
    test.text_area(key="xp-note").input("empty lists climbing").run()
    test.button(key="xp-apply").click().run()
    assert any("may not do this" in e for e in messages(test)["error"])  # a read key
    test.text_input(key="xp-admin-key").input(served.admin_key).run()
    test.button(key="xp-apply").click().run()
    assert any("paused variants: popular" in s for s in messages(test)["success"])
    with http(served, served.read_key) as read:
        stored = read.get(f"/v1/experiments/{KEY}").json()
    assert stored["experiment"]["paused_variants"] == {"popular": "empty lists climbing"}
    test.radio(key="xp-action").set_value("resume").run()
    assert test.button(key="xp-apply").disabled  # a reviewer is required to resume
    test.text_input(key="xp-reviewer").input("ana").run()
    test.button(key="xp-apply").click().run()
    assert messages(test)["exception"] == [] and messages(test)["error"] == []
    with http(served, served.read_key) as read:
        stored = read.get(f"/v1/experiments/{KEY}").json()
    assert stored["experiment"]["paused_variants"] == {}
    assert stored["audit"][-1]["action"].startswith("resume") and "ana" in str(stored["audit"][-1])


def test_impact_takes_an_experiments_lift_and_keeps_manual_entry(running: Running) -> None:
    served = running.served
    test = page_test("impact", served.url, served.read_key)
    shown = messages(test)
    assert shown["exception"] == [] and shown["error"] == [], shown
    assert test.selectbox(key="impact-experiment").value == KEY
    labels = {metric.label: metric.value for metric in test.metric}
    assert {"Measured lift", "Interval low", "Interval high", "Effect per year"} <= set(labels)
    assumptions = next(m.value for m in test.markdown if "holds for a whole year" in m.value)
    assert f"experiment {KEY}'s measured relative lift" in assumptions
    test.radio(key="lift-from").set_value("typed").run()
    labels = {metric.label: metric.value for metric in test.metric}
    assert labels["Effect per year"] == "+468,000"  # 3 % of 15.6 M, the defaults
    assert any("typed in" in m.value for m in test.markdown)


def test_no_experiments_a_revoked_key_and_an_unreachable_server(served: ServedWorld) -> None:
    key_id, key = served.key(["read"])
    assert served.stores.database.gateway.keys.revoke(key_id)
    for page in ("experiments", "impact"):
        shown = messages(page_test(page, served.url, key))
        assert shown["exception"] == [], page
        assert shown["error"] and all("unknown or revoked" in e for e in shown["error"]), page
        url = f"http://127.0.0.1:{free_port()}"
        shown = messages(page_test(page, url, served.read_key))
        assert shown["exception"] == [], page
        assert any("cannot reach the tastebud server" in e for e in shown["error"]), page


def test_in_process_with_no_experiments(tmp_path: Path) -> None:
    world = build_world(tmp_path, online_url="memory://")
    world.stores.close()
    shown = messages(page_test("experiments", home=str(tmp_path)))
    assert shown["exception"] == [] and shown["error"] == []
    assert any("No experiments yet" in i for i in shown["info"])
    impact = page_test("impact", home=str(tmp_path))
    shown = messages(impact)
    assert shown["exception"] == [] and shown["error"] == []
    assert any("No experiment has run yet" in i for i in shown["info"])
    assert {m.label: m.value for m in impact.metric}["Effect per year"] == "+468,000"


def test_the_experiments_page_in_a_browser(dashboard: str, page: Any, running: Running) -> None:
    """Debian's chromium opens the page on the running experiment: no Streamlit exception,
    its analysis drawn (the lift chart), and the screenshot the README shows."""
    page.goto(f"{dashboard}/experiments?experiment={KEY}")
    ready = "[data-testid=stVegaLiteChart]"
    _rendered(page, "[data-testid=stDataFrame]")
    page.wait_for_selector(ready)
    _rendered(page, ready)
    page.wait_for_timeout(500)  # charts draw after their data arrives
    page.screenshot(path=str(SCREENSHOTS / "experiments.png"), full_page=True)
