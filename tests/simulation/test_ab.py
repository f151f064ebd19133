"""A/B tests through the whole stack: a quickstart world served over HTTP, experiments put and
started through the API, simulated users meeting them, the stores analyzed after the fact
and the result held against the simulator's truth.

One home and one gateway for the three runs (each its own experiment, run one after the
other and stopped): an A/A finds nothing and no sample-ratio mismatch; a popularity-only
variant is found worse on click-through, as the truth says and by roughly as much; and a
traffic bug, a canary model that cannot load pushed mid-experiment, is caught by the
sample-ratio check.

The traffic bug is production's own behaviour, no hook: the variant ranks with the
``canary`` alias; halfway through, a broken version (its model file overwritten) is promoted
to ``canary`` without validation. Serving cannot load it, so from then on the variant's
users get control, reported but not counted (``tastebud.ranking.experiment_serving``): the
variant loses the users who first come after the push, and the split is off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tastebud.cli.simulate import LocalHome, local_home, serve_local
from tastebud.config import load_settings
from tastebud.experiments.analysis import Analysis, MetricResult
from tastebud.registry import open_registry
from tastebud.registry.manifest import RESERVED_FIELDS
from tastebud.simulation import ab
from tastebud.simulation.loop import ClosedLoop, LoopConfig, LoopSummary

Run = tuple[Analysis, dict[str, dict[str, Any]], LoopSummary]
POLL = 0.25  # the gateway's alias and definition polls
# A variant known to be worse: only the newest items are candidates (no collaborative-filtering,
# content, popular or trending ones), ranked for dissimilarity: what users see is barely theirs.
WORSE = {
    "candidates": {"cf": 0, "content": 0, "popular": 0, "trending": 0, "fresh": 30},
    "mmr": {"diversity": 1.0},
}


def definition(key: str, treatment: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "variants": [
            {"name": "control", "weight": 0.5},
            {"name": "treatment", "weight": 0.5, **treatment},
        ],
        "goals": ["click_through"],
    }


def loop(local: LocalHome, url: str, seed: int, users: int = 120, days: float = 4) -> LoopSummary:
    config = LoopConfig(users=users, days=days, k=10, seed=seed)
    with httpx.Client(base_url=url, headers={"X-API-Key": local.key}, timeout=30) as http:
        return ClosedLoop(local.model, http, config).run()


def push_broken_canary(local: LocalHome, folder: Path) -> str:
    """A bad deploy: production's files with the model overwritten, registered and promoted
    to ``canary`` with no validation (a loader would have refused it)."""
    registry = open_registry(local.settings)
    registry.fetch("production", folder)
    (folder / "manifest.json").unlink()  # the registry writes its own
    manifest = registry.get("production").model_dump(mode="json")
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    files[-1].write_bytes(b"not a model")
    given = {k: v for k, v in manifest.items() if k not in RESERVED_FIELDS}
    version = registry.register(folder, given).model_version
    registry.promote(version, "canary")
    return version


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    base = load_settings(home=tmp_path_factory.mktemp("home"), database_url=None)
    with local_home(base, 200, 150, 7, 1.0) as local:
        serving = local.settings.serving.model_copy(update={"poll_seconds": POLL})
        settings = local.settings.model_copy(update={"serving": serving})
        local = LocalHome(settings, local.model, local.key, local.admin_key)
        registry = open_registry(settings)
        registry.promote("production", "canary")
        summaries: dict[str, LoopSummary] = {}
        with serve_local(settings) as url:
            admin = httpx.Client(base_url=url, headers={"X-API-Key": local.admin_key})
            with admin:
                for key, treatment in (
                    ("aa", {}),
                    ("worse", {"ranking": WORSE}),
                    ("canary", {"model": "canary"}),
                ):
                    ab.start_experiment(admin, definition(key, treatment), settle_seconds=1.0)
                    early = key == "canary"  # a short first part, then the bad push
                    users, days = {"aa": (120, 3), "worse": (200, 16), "canary": (40, 4)}[key]
                    summaries[key] = loop(local, url, seed=len(summaries), users=users, days=days)
                    if early:
                        push_broken_canary(local, tmp_path_factory.mktemp("broken"))
                        time.sleep(4 * POLL)
                        extra = loop(local, url, seed=10, users=150)
                        summaries[key].variants.update(
                            {f"{name}+": v for name, v in extra.variants.items()}
                        )
                    ab.stop_experiment(admin, key)
        now = datetime.now(UTC)
        results: dict[str, Run] = {}
        for key, summary in summaries.items():
            analysis = ab.analyze_database(settings, key, now=now)
            results[key] = (analysis, ab.truth_by_variant(summary, key, "control"), summary)
        yield results


def click_through(analysis: Analysis) -> MetricResult:
    (result,) = [r for r in analysis.results if r.metric == "click_through"]
    return result


def test_aa_finds_nothing(runs: dict[str, Run]) -> None:
    analysis, truth, summary = runs["aa"]
    assert summary.failed_requests == 0 and summary.events_rejected == 0
    assert min(analysis.exposed_users.values()) >= 30
    assert not analysis.srm.flagged and analysis.trustworthy
    result = click_through(analysis)
    assert result.comparison is not None and result.adjusted_p is not None
    assert result.adjusted_p > analysis.alpha
    assert analysis.decision.action != "ship"
    assert abs(truth["treatment"]["true_lift"]) < 0.15  # the same lists, other users


def test_a_worse_variant_is_found_worse_as_the_truth_says(runs: dict[str, Run]) -> None:
    analysis, truth, _ = runs["worse"]
    assert not analysis.srm.flagged
    true_lift = truth["treatment"]["true_lift"]
    print(truth, click_through(analysis))
    assert true_lift < -0.1  # the truth: these lists suit these users less
    comparison = click_through(analysis).comparison
    assert comparison is not None and comparison.p_value is not None
    lift = comparison.relative
    assert lift.estimate is not None and lift.low is not None and lift.high is not None
    assert comparison.p_value < analysis.alpha and lift.high < 0  # found worse
    assert 0.5 * true_lift > lift.estimate > 2 * true_lift  # roughly as much
    assert analysis.decision.action != "ship"


def test_a_broken_canary_is_caught_by_the_sample_ratio_check(runs: dict[str, Run]) -> None:
    analysis, _, summary = runs["canary"]
    served = summary.variants
    # Before the push the treatment served its own lists; after it, only control's.
    assert served["canary/treatment"].lists > 0
    assert "canary/treatment+" not in served and served["canary/control+"].lists > 0
    users = analysis.exposed_users
    print(users, analysis.srm, {k: v.as_dict()["users"] for k, v in served.items()})
    assert users["treatment"] < 0.8 * users["control"]
    assert analysis.srm.flagged and not analysis.trustworthy
    assert any("sample ratio" in warning.lower() for warning in analysis.warnings)
    assert analysis.decision.action != "ship"
