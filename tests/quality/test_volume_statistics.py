"""The volume check's events-per-session statistic on simulated bursty hours (issue 19):
a busier or quieter day is not an anomaly, half of one hour's events lost is."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.quality.stats import SessionHours, normal_tail, per_session_z

ALPHA = 1e-4  # the default volume_alpha
PROFILE = np.concatenate([np.full(8, 20.0), np.full(16, 100.0)])  # sessions per clock hour


def day(rng: np.random.Generator, level: float, lose: dict[int, float] | None = None) -> list:
    """One day's hours: Poisson sessions, each a geometric burst of events (mean 9, so the
    hourly counts are about 17x over-dispersed), ``lose`` {hour: share} dropped at random."""
    rows = []
    for hour, rate in enumerate(PROFILE * level):
        sizes = rng.geometric(1 / 9, size=rng.poisson(rate))
        share = (lose or {}).get(hour, 0.0)
        sizes = rng.binomial(sizes, 1.0 - share)
        sizes = sizes[sizes > 0]  # a session that lost every event is not seen
        rows.append((len(sizes), sizes.sum(), (sizes**2).sum()))
    return rows


def hours(days: list[list]) -> SessionHours:
    table = np.array(days, dtype=np.float64)  # days x hours x 3
    return SessionHours(table[..., 0], table[..., 1], table[..., 2])


def judge(current: list, history: list[list]) -> tuple[np.ndarray, np.ndarray]:
    now = hours([current])
    ratio, z = per_session_z(
        SessionHours(*(a[0] for a in (now.sessions, now.events, now.squares))), hours(history)
    )
    p_values = np.array([normal_tail(float(value)) for value in z])
    return ratio, p_values


@pytest.mark.parametrize("level", [0.7, 1.3])
def test_a_day_level_shift_across_all_hours_does_not_alarm(level: float) -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        history = [day(rng, rng.uniform(0.85, 1.15)) for _ in range(7)]
        ratio, p_values = judge(day(rng, level), history)
        assert (p_values >= ALPHA).all(), (seed, p_values.min())
        assert np.isfinite(ratio).all()  # every hour was judged


def test_half_of_one_hour_lost_alarms_there_only() -> None:
    rng = np.random.default_rng(3)
    history = [day(rng, rng.uniform(0.85, 1.15)) for _ in range(7)]
    ratio, p_values = judge(day(rng, 1.0, lose={20: 0.5}), history)
    assert p_values[20] < ALPHA and 0.4 < ratio[20] < 0.65
    assert (np.delete(p_values, 20) >= ALPHA).all()


def test_an_hour_without_history_is_not_judged() -> None:
    rng = np.random.default_rng(4)
    history = [day(rng, 1.0)]  # one previous day: too few
    ratio, _ = judge(day(rng, 1.0), history)
    assert np.isnan(ratio).all()


def test_one_hour_sent_twice_alarms_as_a_spike() -> None:
    rng = np.random.default_rng(5)
    history = [day(rng, rng.uniform(0.85, 1.15)) for _ in range(7)]
    current = day(rng, 1.0)
    sessions, events, squares = current[12]
    current[12] = (sessions, 2 * events, 4 * squares)  # a retry storm: every event twice
    ratio, p_values = judge(current, history)
    assert p_values[12] < ALPHA and 1.6 < ratio[12] < 2.5
