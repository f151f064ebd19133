from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tastebud.config import load_settings


def test_defaults_live_under_home(home: Path) -> None:
    settings = load_settings()
    assert settings.home == home.resolve()
    assert settings.resolved_database_url == f"embedded://{home / 'db'}"
    assert settings.resolved_online_url == f"sqlite://{home / 'online.db'}"
    assert settings.resolved_artifacts_url == str(home / "artifacts")
    assert "rating" in settings.events.types and settings.events.types["rating"].value_required


def test_file_in_working_directory_and_env_override(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("tastebud.toml").write_text(
        'online_url = "memory://"\n'
        "[events]\nmax_context_bytes = 100\n"
        '[events.types.stream]\nweight = 2.5\nvalue = "seconds"\n'
    )
    settings = load_settings()
    assert settings.online_url == "memory://"
    assert settings.events.max_context_bytes == 100
    assert settings.events.types["stream"].weight == 2.5
    assert "play" in settings.events.types  # added to the defaults, not instead of them
    monkeypatch.setenv("TASTEBUD_EVENTS__MAX_CONTEXT_BYTES", "7")
    monkeypatch.setenv("TASTEBUD_ONLINE_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings()
    assert settings.events.max_context_bytes == 7
    assert settings.online_url == "redis://127.0.0.1:6379/0"
    assert "stream" in settings.events.types


def test_config_env_names_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('database_url = "postgresql://db.example/tastebud"\n')
    monkeypatch.setenv("TASTEBUD_CONFIG", str(config))
    assert load_settings().resolved_database_url == "postgresql://db.example/tastebud"
    monkeypatch.setenv("TASTEBUD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        load_settings()


def test_a_default_event_type_can_be_removed(home: Path) -> None:
    Path("tastebud.toml").write_text("[events.types]\nclick = false\n")
    types = load_settings().events.types
    assert "click" not in types and "play" in types


def test_invalid_settings_are_refused(home: Path) -> None:
    every_type_off = "\n".join(f"{name} = false" for name in load_settings().events.types)
    Path("tastebud.toml").write_text(f"[events.types]\n{every_type_off}\n")
    with pytest.raises(ValidationError, match="at least one event type"):
        load_settings()
    Path("tastebud.toml").write_text("unknown_key = 1\n")
    with pytest.raises(ValidationError, match="unknown_key"):
        load_settings()
    # TOML has inf (and 1e999 overflows to it): no ranking setting holds it.
    for value in ("inf", "1e999"):
        Path("tastebud.toml").write_text(f"[ranking.recency]\nhalf_life_days = {value}\n")
        with pytest.raises(ValidationError, match=r"half_life_days\n.*finite"):
            load_settings()


def test_spark_properties_come_from_the_file_or_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("tastebud.toml").write_text(
        'spark_master = "local[1]"\n[spark_conf]\n"spark.driver.memory" = "8g"\n'
        '"spark.sql.shuffle.partitions" = 64\n"spark.sql.adaptive.enabled" = false\n'
    )
    settings = load_settings()
    assert settings.spark_conf == {
        "spark.driver.memory": "8g",
        "spark.sql.shuffle.partitions": "64",  # as Spark spells it
        "spark.sql.adaptive.enabled": "false",
    }
    monkeypatch.setenv("TASTEBUD_SPARK_CONF", '{"spark.driver.memory": "2g"}')
    assert load_settings().spark_conf["spark.driver.memory"] == "2g"  # over the file's
    monkeypatch.delenv("TASTEBUD_SPARK_CONF")
    Path("tastebud.toml").write_text('[spark_conf]\n"driver.memory" = "8g"\n')
    with pytest.raises(ValidationError, match=r"'driver\.memory' is not a Spark property"):
        load_settings()
