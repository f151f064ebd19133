"""Every dashboard page, run by Streamlit's AppTest against a live server on a generated
world (no mocked API): what it shows, that the explorer's controls reach the ranking, the
admin actions, and a clear message (never a traceback) for bad input."""

from __future__ import annotations

from pathlib import Path

import httpx
from ranking.serving_world import build_world

from dashboard.conftest import ServedWorld
from dashboard.pages import messages, page_test


def _table(test, index: int = 0) -> list[dict]:  # type: ignore[no-untyped-def]
    return test.table[index].value.to_dict("records")  # type: ignore[no-any-return]


def test_explorer_shows_a_users_history_and_list_and_the_controls_rerank_it(
    served: ServedWorld,
) -> None:
    test = page_test("explorer", served.url, served.read_key)
    assert messages(test)["exception"] == [] and messages(test)["error"] == []
    assert test.selectbox(key="picked-user").value
    test.text_input(key="typed-user").input(served.active_user()).run()
    before = _table(test)
    assert len(before) == 10
    assert all(row["sources"] and row["title"] and row["why"] for row in before)
    history = test.dataframe[0].value
    assert {"when", "event", "title", "creator", "categories"} <= set(history.columns)
    assert len(history) > 0
    # The diversity slider and k go to the server as request overrides: the list changes.
    test.slider(key="ctl-mmr.diversity").set_value(1.0)
    test.slider(key="ctl-k").set_value(6)
    test.run()
    after = _table(test)
    assert len(after) == 6
    assert [r["item_id"] for r in after] != [r["item_id"] for r in before[:6]]
    assert "'diversity': 1.0" in test.caption[0].value
    assert messages(test)["exception"] == []


def test_explorer_similar_items_and_cold_start(served: ServedWorld) -> None:
    test = page_test("explorer", served.url, served.read_key)
    similar = test.dataframe[-1].value  # after the history: similar items
    assert len(similar) > 0 and {"title", "score", "sources"} <= set(similar.columns)
    chooser = test.multiselect(key="cold-items")
    assert chooser.value == [] and any("Pick one or more" in m for m in messages(test)["info"])
    popular = httpx.get(
        f"{served.url}/v1/popular?k=2", headers={"X-API-Key": served.read_key}
    ).json()["items"]
    chooser.set_value([item["item_id"] for item in popular]).run()
    assert messages(test)["exception"] == [], messages(test)
    cold = test.dataframe[-1].value.to_dict("records")  # after the similar items
    assert len(cold) == 10 and all(row["why"] for row in cold)


def test_explorer_unknown_user_and_item_get_a_message(served: ServedWorld) -> None:
    test = page_test("explorer", served.url, served.read_key)
    test.text_input(key="typed-user").input("nobody-like-this")
    test.text_input(key="typed-item").input("no-such-item")
    test.run()
    shown = messages(test)
    assert shown["exception"] == []
    assert any("No user 'nobody-like-this' is known" in w for w in shown["warning"])
    assert any("no item 'no-such-item'" in e for e in shown["error"]), shown
    assert len(_table(test)) == 10  # an unknown user still gets the popular list


def test_operations_page_reads_metrics_jobs_dlq_and_checks(served: ServedWorld) -> None:
    test = page_test("operations", served.url, served.read_key)
    shown = messages(test)
    assert shown["exception"] == [] and shown["error"] == []
    labels = {metric.label: metric.value for metric in test.metric}
    assert {"Accepted", "Duplicate", "Rejected", "Ranking p95", "Entries"} <= set(labels)
    jobs = test.dataframe[0].value
    assert {"popularity", "trending", "recommendations"} <= set(jobs["job"])
    assert set(jobs["last status"]) == {"succeeded"}
    assert any("No data-quality run yet" in i for i in shown["info"])


def test_models_page_lists_versions_and_promotes_with_an_admin_key(served: ServedWorld) -> None:
    test = page_test("models", served.url, served.read_key)
    shown = messages(test)
    assert shown["exception"] == [] and shown["error"] == []
    versions = test.dataframe[0].value
    assert sorted(versions["aliases"]) == ["", "production"]
    version = versions["version"][list(versions["aliases"]).index("production")]
    # Apply stays disabled until a key is given and the change confirmed.
    assert test.button(key="admin-apply").disabled
    test.text_input(key="admin-key").input(served.read_key)
    test.selectbox(key="admin-alias").set_value("canary")
    test.selectbox(key="admin-version").set_value(version)
    test.checkbox(key="admin-confirm").check()
    test.run()
    test.button(key="admin-apply").click().run()
    assert any("may not do this" in e for e in messages(test)["error"]), messages(test)
    test.text_input(key="admin-key").input(served.admin_key)
    test.run()
    test.button(key="admin-apply").click().run()
    assert any(f"canary now points at {version}" in s for s in messages(test)["success"])
    with_alias = page_test("models", served.url, served.read_key).dataframe[0].value
    assert "canary, production" in list(with_alias["aliases"])


def test_impact_page_projects_a_year_with_its_interval(served: ServedWorld) -> None:
    test = page_test("impact", served.url, served.read_key)
    test.radio(key="lift-from").set_value("typed").run()
    assert messages(test)["exception"] == []
    labels = {metric.label: metric.value for metric in test.metric}
    # 100,000 users x 3 sessions x 52 weeks x 0.05 conversions x 20 = 15.6 M a year; +3 %.
    assert labels["Baseline value per year"] == "15,600,000"
    assert labels["Effect per year"] == "+468,000"
    assert labels["Interval"] == "+156,000 to +780,000"
    assert any("holds for a whole year" in m.value for m in test.markdown)
    test.number_input(key="low").set_value(4.0)
    test.run()
    assert any("lift must lie within its interval" in e for e in messages(test)["error"])


def test_an_unreachable_server_is_a_message_on_every_page(served: ServedWorld) -> None:
    from api.gateway_testing import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for page in ("explorer", "operations", "models"):
        shown = messages(page_test(page, url, served.read_key))
        assert shown["exception"] == [], page
        assert shown["error"] and all(
            "cannot reach the tastebud server" in e for e in shown["error"]
        )


def test_a_revoked_key_is_a_message(served: ServedWorld) -> None:
    key_id, key = served.key(["read"])
    assert served.stores.database.gateway.keys.revoke(key_id)
    for page in ("explorer", "operations", "models"):
        shown = messages(page_test(page, served.url, key))
        assert shown["exception"] == [], page
        assert shown["error"] and all("unknown or revoked" in e for e in shown["error"]), page


def test_in_process_over_a_model_without_metrics_or_training_record(tmp_path: Path) -> None:
    world = build_world(tmp_path, online_url="memory://")
    world.stores.close()
    models = page_test("models", home=str(tmp_path))
    shown = messages(models)
    assert shown["exception"] == [] and shown["error"] == []
    assert any("No version has holdout metrics" in i for i in shown["info"])
    assert any("No training record to show" in i for i in shown["info"])
    explorer = page_test("explorer", home=str(tmp_path))
    assert any("No users yet" in i for i in messages(explorer)["info"])  # an empty catalog
    explorer.text_input(key="typed-user").input("u4").run()
    assert messages(explorer)["exception"] == [] and messages(explorer)["error"] == []
    assert len(_table(explorer)) == 10


def test_models_page_shows_an_automl_search_and_metrics_over_time(served: ServedWorld) -> None:
    test = page_test("models", served.url, served.read_key)
    test.selectbox(key="model-version").set_value(served.searched).run()
    shown = messages(test)
    assert shown["exception"] == [] and shown["error"] == []
    search = next(c.value for c in test.caption if "trials in" in c.value)
    assert "best validation NDCG@10" in search
    trials = test.dataframe[-1].value
    assert len(trials) >= 1 and {"value", "state"} <= set(trials.columns)
    assert test.multiselect(key="model-metrics").options  # the search's version has metrics


def test_explorer_search_finds_users_by_the_start_of_their_id(served: ServedWorld) -> None:
    everyone = sorted(u.user_id for u in served.stores.catalog.list_users(limit=1000))
    user = everyone[-1]  # the last in id order
    prefix = user[: max(1, len(user) - 1)]
    test = page_test("explorer", served.url, served.read_key)
    assert len(test.selectbox(key="picked-user").options) == len(everyone)
    test.text_input(key="user-search").input(prefix).run()
    options = test.selectbox(key="picked-user").options
    assert user in options and all(o.startswith(prefix) for o in options)
    assert options == sorted(u for u in everyone if u.startswith(prefix) and u != prefix)
    test.selectbox(key="picked-user").set_value(user).run()
    shown = messages(test)
    assert shown["exception"] == [] and shown["error"] == [], shown
    assert len(_table(test)) == 10
    test.text_input(key="user-search").input("zz-nobody").run()
    assert any("No user id starts with 'zz-nobody'" in i for i in messages(test)["info"])
