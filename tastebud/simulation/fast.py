"""The fast path: many experiments from the user model (``users``) without HTTP, for checking
the statistics (false positives, power, CUPED) in seconds.

One experiment: ``Design.users`` units, each a clone of a world user drawn at random (their
tastes and visit rate), are hashed into variants with GrowthBook's v2 hash exactly as
``tastebud.experiments.assignment`` does (``hash_many`` is its vectorised twin, checked
against it in the tests). Each variant's ranker is a stand-in computed from the truth
(``Ranker``): a blend of true utility and item popularity, plus noise, cut to the top ``k``.
A user's list is drawn once per period (as a precomputed list is), and over ``v`` visits
the clicks at position ``r`` are ``Binomial(v, examine(r) * click(utility))``, the same
distribution as ``v`` independent sessions; each click then gets its reactions
(``UserModel.react``).

The pre-period (``pre_days``) shows everyone control's ranker, as production did before the
experiment; its per-user totals are CUPED's covariate. Only users with at least one visit in
the experiment period are exposed and counted, as in the real analysis.

Seeded effects: ``Arm.click_lift`` multiplies a variant's click probability (a known lift),
``Arm.drop_exposures`` loses that share of a variant's users (a traffic bug the
sample-ratio test should catch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tastebud.config import default_metrics
from tastebud.experiments.assignment import FNV_OFFSET, FNV_PRIME, bucket_ranges
from tastebud.experiments.samples import ExperimentData, MetricSample, VariantSample
from tastebud.simulation.users import UserModel

#: The metrics the fast path fills, by their default definitions (``config.default_metrics``).
METRICS = ("click_through", "conversion", "plays_per_user", "play_time", "skip_rate")


@dataclass(frozen=True)
class Ranker:
    """A stand-in ranking: score = (1 - popularity) * utility + popularity * pop_rank, plus
    Gaussian ``noise``; the top ``k`` by score. ``pop_rank`` is the item's popularity
    percentile in the catalog (0..1), so ``popularity=1`` ranks by popularity alone."""

    popularity: float = 0.0
    noise: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.popularity <= 1.0 or not self.noise >= 0:
            raise ValueError("invalid Ranker: popularity must be within [0, 1], noise >= 0")


@dataclass(frozen=True)
class Arm:
    """A variant of a simulated experiment; the first arm of a design is control."""

    name: str
    weight: float
    ranker: Ranker = field(default_factory=Ranker)
    click_lift: float = 1.0
    drop_exposures: float = 0.0


@dataclass(frozen=True)
class Design:
    """What to simulate per experiment: units, periods (days), list length and the arms."""

    arms: tuple[Arm, ...]
    users: int = 2000
    days: int = 7
    pre_days: int = 14
    k: int = 10
    candidates: int = 50  # per user, the ranker's top this many before noise and the cut

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or len({arm.name for arm in self.arms}) != len(self.arms):
            raise ValueError("invalid Design: at least two arms with distinct names")
        if abs(sum(arm.weight for arm in self.arms) - 1.0) > 1e-6:
            raise ValueError("invalid Design: arm weights must sum to 1")
        if self.users < 2 or self.days < 1 or self.pre_days < 0 or self.k < 1:
            raise ValueError("invalid Design: users >= 2, days >= 1, pre_days >= 0, k >= 1")


def ab(
    treatment: Ranker | None = None, *, lift: float = 1.0, drop: float = 0.0, **fields: int
) -> Design:
    """A 50/50 design: control ranks by truth; ``treatment`` (default the same ranker: an
    A/A test) with an optional seeded click ``lift`` or exposure ``drop``."""
    control = Arm("control", 0.5)
    other = Arm("treatment", 0.5, treatment or Ranker(), click_lift=lift, drop_exposures=drop)
    return Design(arms=(control, other), **fields)


# --- assignment ------------------------------------------------------------------------------


def fnv1a32_many(texts: Sequence[str]) -> np.ndarray:
    """``assignment.fnv1a32`` of many strings at once (one numpy pass per byte position)."""
    encoded = np.array([text.encode() for text in texts], dtype=bytes)
    width = encoded.dtype.itemsize
    lengths = np.char.str_len(encoded)
    matrix = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(len(texts), width)
    value = np.full(len(texts), FNV_OFFSET, dtype=np.uint64)
    for column in range(width):
        mixed = ((value ^ matrix[:, column]) * np.uint64(FNV_PRIME)) & np.uint64(0xFFFFFFFF)
        value = np.where(column < lengths, mixed, value)
    return value


def hash_many(seed: str, unit_ids: Sequence[str]) -> np.ndarray:
    """``assignment.gb_hash(seed, id, 2)`` for many ids: floats in [0, 1)."""
    inner = fnv1a32_many([seed + unit for unit in unit_ids])
    outer = fnv1a32_many([str(int(value)) for value in inner])
    return (outer % 10_000).astype(float) / 10_000


def assign_many(seed: str, unit_ids: Sequence[str], weights: Sequence[float]) -> np.ndarray:
    """Each unit's variant index under GrowthBook's ranges (full traffic), -1 for none."""
    n = hash_many(seed, unit_ids)
    chosen = np.full(len(n), -1)
    for index, (start, end) in enumerate(bucket_ranges(weights, 1.0)):
        chosen[(chosen < 0) & (start <= n) & (n < end)] = index
    return chosen


# --- rankers ---------------------------------------------------------------------------------


class Candidates:
    """Each world user's top ``size`` catalog positions by a ranker's score (noise-free),
    computed once per ranker so an experiment only perturbs and cuts them."""

    def __init__(self, model: UserModel, ranker: Ranker, size: int) -> None:
        utility = model.all_utility()
        popularity = model.world.item_popularity[model.catalog]
        pop_rank = np.argsort(np.argsort(popularity)) / max(1, len(popularity) - 1)
        scores = (1 - ranker.popularity) * utility + ranker.popularity * pop_rank[None, :]
        size = min(size, scores.shape[1])
        top = np.argpartition(-scores, size - 1, axis=1)[:, :size]
        self.positions = top
        self.scores = np.take_along_axis(scores, top, axis=1)
        self.noise = ranker.noise

    def lists(self, rng: np.random.Generator, world_users: np.ndarray, k: int) -> np.ndarray:
        """One list per unit (catalog positions, best first) with fresh noise."""
        scores = self.scores[world_users]
        if self.noise > 0:
            scores = scores + rng.normal(0.0, self.noise, scores.shape)
        order = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(self.positions[world_users], order, axis=1)


# --- one period ------------------------------------------------------------------------------


def simulate_period(
    model: UserModel,
    rng: np.random.Generator,
    world_users: np.ndarray,
    lists: np.ndarray,
    visits: np.ndarray,
    lift: float | np.ndarray = 1.0,
) -> dict[str, np.ndarray]:
    """Per-unit totals over a period: impressions, clicks, plays, seconds, skips, likes,
    purchases (and ``utility``, the mean true utility of the list served)."""
    n, k = lists.shape
    utility = model.all_utility()[world_users[:, None], lists]
    lift = np.broadcast_to(np.asarray(lift, dtype=float), (n,))[:, None]
    p = model.examination(k)[None, :] * model.click_probability(utility, lift)
    clicks = rng.binomial(visits[:, None], p)
    flat = np.repeat(np.arange(n * k), clicks.ravel())
    reactions = model.react(rng, utility.ravel()[flat], model.catalog[lists.ravel()[flat]])
    owner = flat // k

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=weights.astype(float), minlength=n)

    likes, bought = total(reactions.liked), total(reactions.bought)
    return {
        "impressions": (visits * k).astype(float),
        "clicks": clicks.sum(axis=1).astype(float),
        "plays": clicks.sum(axis=1).astype(float),
        "seconds": total(reactions.seconds),
        "skips": total(reactions.skipped),
        "likes": likes,
        "purchases": bought,
        "converted": likes + bought,
        "utility": utility.mean(axis=1),
    }


def _measures(totals: dict[str, np.ndarray], metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A metric's per-user numerator and denominator from a period's totals."""
    if metric == "click_through":
        return totals["clicks"], totals["impressions"]
    if metric == "conversion":
        return totals["converted"], None
    if metric == "plays_per_user":
        return totals["plays"], None
    if metric == "play_time":
        return totals["seconds"], None
    if metric == "skip_rate":
        return totals["skips"], totals["plays"] + totals["skips"]
    raise ValueError(f"the fast path has no metric {metric!r}")


# --- experiments -----------------------------------------------------------------------------


class FastSimulator:
    """Draws experiments of one design from one user model; rankers are prepared once."""

    def __init__(self, model: UserModel, design: Design) -> None:
        self.model = model
        self.design = design
        self.unit_ids = [f"sim{j:07d}" for j in range(design.users)]
        prepared: dict[Ranker, Candidates] = {}
        for arm in design.arms:
            if arm.ranker not in prepared:
                prepared[arm.ranker] = Candidates(model, arm.ranker, design.candidates)
        self.candidates = prepared

    def run(self, count: int, seed: int = 0) -> list[ExperimentData]:
        """``count`` independent experiments (keys ``sim-{seed}-{n}``), reproducibly."""
        return [
            self.experiment(f"sim-{seed}-{n}", np.random.default_rng([seed, n]))
            for n in range(count)
        ]

    def experiment(self, key: str, rng: np.random.Generator) -> ExperimentData:
        design, model = self.design, self.model
        world_users = rng.integers(0, model.spec.users, design.users)
        rate = model.visit_rate(world_users)
        arm = assign_many(key, self.unit_ids, [a.weight for a in design.arms])
        daily = rng.poisson(rate[:, None], (design.users, design.days))
        visits = daily.sum(axis=1)
        dropped = np.zeros(design.users, bool)
        lists = np.empty((design.users, design.k), dtype=np.int64)
        lift = np.ones(design.users)
        for index, spec in enumerate(design.arms):
            mine = arm == index
            lists[mine] = self.candidates[spec.ranker].lists(rng, world_users[mine], design.k)
            lift[mine] = spec.click_lift
            dropped |= mine & (rng.random(design.users) < spec.drop_exposures)
        post = simulate_period(model, rng, world_users, lists, visits, lift)
        control = self.candidates[design.arms[0].ranker]
        pre_lists = control.lists(rng, world_users, design.k)
        pre_visits = rng.poisson(rate * design.pre_days)
        pre = simulate_period(model, rng, world_users, pre_lists, pre_visits)
        counted = (visits > 0) & ~dropped & (arm >= 0)
        first_day = np.argmax(daily > 0, axis=1)
        return self._data(key, arm, counted, post, pre, first_day)

    def _data(
        self,
        key: str,
        arm: np.ndarray,
        counted: np.ndarray,
        post: dict[str, np.ndarray],
        pre: dict[str, np.ndarray],
        first_day: np.ndarray,
    ) -> ExperimentData:
        design = self.design
        names = [a.name for a in design.arms]
        specs = default_metrics()
        rows = {name: np.flatnonzero(counted & (arm == i)) for i, name in enumerate(names)}
        data = ExperimentData(
            key=key,
            variants=names,
            weights=[a.weight for a in design.arms],
            exposed_users={name: len(rows[name]) for name in names},
            days=design.days,
        )
        for metric in METRICS:
            numerator, denominator = _measures(post, metric)
            pre_numerator, pre_denominator = _measures(pre, metric)
            variants = {
                name: VariantSample(
                    numerator=numerator[at],
                    denominator=None if denominator is None else denominator[at],
                    pre_numerator=pre_numerator[at] if design.pre_days else None,
                    pre_denominator=(
                        None
                        if pre_denominator is None or not design.pre_days
                        else pre_denominator[at]
                    ),
                    first_day=first_day[at],
                )
                for name, at in rows.items()
            }
            data.metrics[metric] = MetricSample(metric, specs[metric], variants)
        return data


@dataclass(frozen=True)
class ArmTruth:
    """What the truth says of an arm, averaged over many world users: the mean true utility
    of the lists it serves and its expected click-through (clicks per item shown)."""

    utility: float
    click_through: float


def arm_truth(model: UserModel, design: Design, seed: int = 0) -> dict[str, ArmTruth]:
    """Each arm's expected values with every world user in it (no sampling of clicks)."""
    rng = np.random.default_rng(seed)
    world_users = np.arange(model.spec.users)
    simulator = FastSimulator(model, design)
    exam = model.examination(design.k)
    truths: dict[str, ArmTruth] = {}
    for arm in design.arms:
        lists = simulator.candidates[arm.ranker].lists(rng, world_users, design.k)
        utility = model.all_utility()[world_users[:, None], lists]
        clicks = exam[None, :] * model.click_probability(utility, arm.click_lift)
        weight = model.visit_rate(world_users)[:, None]  # heavy users see more lists
        truths[arm.name] = ArmTruth(
            utility=float(utility.mean()),
            click_through=float((clicks * weight).sum() / (weight.sum() * design.k)),
        )
    return truths
