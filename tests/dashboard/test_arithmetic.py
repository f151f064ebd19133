"""The dashboard's own arithmetic: quantiles from Prometheus buckets, the scrape's sums, and
the yearly impact projection."""

from __future__ import annotations

import pytest

from tastebud.dashboard.impact import ImpactInputs, assumptions, project
from tastebud.dashboard.metrics import Scrape, bucket_quantile

TEXT = """# HELP t_latency_ms x
# TYPE t_latency_ms histogram
t_latency_ms_bucket{stage="total",le="10.0"} 50.0
t_latency_ms_bucket{stage="total",le="20.0"} 90.0
t_latency_ms_bucket{stage="total",le="40.0"} 100.0
t_latency_ms_bucket{stage="total",le="+Inf"} 100.0
t_latency_ms_count{stage="total"} 100.0
t_latency_ms_sum{stage="total"} 1000.0
t_latency_ms_bucket{stage="score",le="10.0"} 1.0
t_latency_ms_bucket{stage="score",le="20.0"} 1.0
t_latency_ms_bucket{stage="score",le="40.0"} 1.0
t_latency_ms_bucket{stage="score",le="+Inf"} 1.0
# HELP t_events_total x
# TYPE t_events_total counter
t_events_total{outcome="accepted"} 7.0
t_events_total{outcome="rejected"} 2.0
"""


def test_quantiles_interpolate_within_the_bucket_as_promql_does() -> None:
    scrape = Scrape.parse(TEXT)
    assert scrape.quantile("t_latency_ms", 0.5, stage="total") == pytest.approx(10.0)
    # The 95th of 100 observations lies halfway into the (20, 40] bucket's 10.
    assert scrape.quantile("t_latency_ms", 0.95, stage="total") == pytest.approx(30.0)
    assert scrape.quantile("t_latency_ms", 0.7, stage="total") == pytest.approx(15.0)
    assert scrape.quantile("t_nothing", 0.5) is None
    # Beyond the largest finite bound: that bound, as histogram_quantile answers.
    assert bucket_quantile(0.99, {10.0: 1.0, float("inf"): 10.0}) == 10.0
    assert bucket_quantile(0.5, {10.0: 0.0, float("inf"): 0.0}) is None


def test_sums_by_label() -> None:
    scrape = Scrape.parse(TEXT)
    assert scrape.by_label("t_events_total", "outcome") == {"accepted": 7.0, "rejected": 2.0}
    assert scrape.total("t_events_total") == 9.0


def test_the_projection_and_its_refusals() -> None:
    inputs = ImpactInputs(
        lift=0.02, lift_low=-0.01, lift_high=0.05, users=1000, sessions_per_user_week=2,
        per_session=0.5, value=0.3, outcome="hours",
    )  # fmt: skip
    result = project(inputs)
    assert result.outcomes_baseline == pytest.approx(1000 * 2 * 52 * 0.5)
    assert result.baseline == pytest.approx(15_600.0)
    assert (result.effect_low, result.effect, result.effect_high) == pytest.approx(
        (-156.0, 312.0, 780.0)
    )
    assert any("hour played" in line for line in assumptions(inputs))
    with pytest.raises(ValueError, match="within its interval"):
        project(ImpactInputs(0.1, 0.0, 0.05, 10, 1, 1, 1))
    with pytest.raises(ValueError, match="users cannot be negative"):
        project(ImpactInputs(0.0, 0.0, 0.0, -1, 1, 1, 1))
