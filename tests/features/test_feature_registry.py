"""Feature manifests: the built-in views load; bad manifests fail naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud.features.views import FeatureRef, FeatureRegistry, ManifestError

VIEW = """
name: {name}
version: 1.0.0
entity: user
description: d
owner: o
ttl_seconds: 60
source: {{kind: python, transform: "m:f"}}
depends_on: {depends}
features:
  - {{name: x, dtype: {dtype}, description: x}}
"""


def write(folder: Path, name: str, *, dtype: str = "int64", depends: str = "[]") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(VIEW.format(name=name, dtype=dtype, depends=depends))
    return path


def test_builtin_views_load_and_cover_the_issue() -> None:
    registry = FeatureRegistry.load()
    names = set(registry.views)
    assert {
        "item_popularity",
        "item_freshness",
        "user_category_affinity",
        "user_engagement",
        "user_cf_factors",
        "item_cf_factors",
        "item_content_embedding",
    } <= names
    popularity = registry.view("item_popularity")
    assert popularity.entity == "item" and "popularity_score" in popularity.feature_names
    assert len(popularity.fingerprint) == 16


def test_type_error_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "m", "bad", dtype="float128")
    with pytest.raises(ManifestError) as raised:
        FeatureRegistry.load([path], builtin=False)
    message = str(raised.value)
    assert str(path) in message and "features.0.dtype" in message


def test_missing_and_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nversion: one\n")
    with pytest.raises(ManifestError, match=r"x\.yaml: field version"):
        FeatureRegistry.load([path], builtin=False)
    path.write_text(VIEW.format(name="x", dtype="int64", depends="[]") + "colour: red\n")
    with pytest.raises(ManifestError, match="field colour"):
        FeatureRegistry.load([path], builtin=False)


def test_cycle_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write(folder, "a", depends="[b]")
    write(folder, "b", depends="[c]")
    write(folder, "c", depends="[a]")
    with pytest.raises(ManifestError, match=r"depends_on: cycle a -> b -> c -> a"):
        FeatureRegistry.load([folder], builtin=False)


def test_unknown_dependency_duplicate_view_and_bad_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write(folder, "a", depends="[ghost]")
    with pytest.raises(ManifestError, match=r"a\.yaml: field depends_on\.0: unknown view 'ghost'"):
        FeatureRegistry.load([folder], builtin=False)
    other = tmp_path / "o"
    write(other, "item_popularity")
    with pytest.raises(ManifestError, match="already declared"):
        FeatureRegistry.load([other])
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        FeatureRegistry.load([broken], builtin=False)
    with pytest.raises(ManifestError, match="no such manifest"):
        FeatureRegistry.load([tmp_path / "absent.yaml"], builtin=False)


def test_dependencies_come_first(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write(folder, "z_base")
    write(folder, "a_top", depends="[z_base]")
    registry = FeatureRegistry.load([folder], builtin=False)
    assert [view.name for view in registry.ordered()] == ["z_base", "a_top"]


def test_resolve_reports_unknown_references() -> None:
    registry = FeatureRegistry.load()
    grouped, unknown = registry.resolve(
        ["item_freshness:*", "item_freshness:age_days", "nope:x", "item_popularity:nope", "bad"]
    )
    assert grouped == {"item_freshness": ["freshness_score", "age_days", "active"]}
    assert unknown == ["nope:x", "item_popularity:nope", "bad"]
    assert str(FeatureRef.parse("a:b")) == "a:b"
