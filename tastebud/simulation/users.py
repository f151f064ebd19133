"""The simulated users: what each one truly likes, how they look at a list and what they do.

The world is the synthetic generator's (``tastebud.data.synthetic``): the same spec gives the
same latent users and items, so a world served by tastebud (``quickstart``, ``datasets
generate``) and rebuilt here from its ``truth.json`` agree id for id.

**True utility.** User ``u``'s utility for item ``i`` is the generator's interaction
affinity without its per-interaction noise (``synthetic_day.interaction_affinity``)::

    utility = sigmoid(4 * relative_taste - 2.2 + 1.5 * favourite_creator + quality_i)

where ``relative_taste`` is the user's taste for the item's category (its secondary category
at half weight) over the user's favourite category's, in [0, 1].

**Position bias** (the position-based model; Craswell et al., "An experimental comparison of
click position-bias models", WSDM 2008): position ``r`` (1 = top) is examined with
probability ``r ** -eta``, ``eta = 0.7`` by default, independently of what is shown there
(Joachims, Swaminathan and Schnabel, "Unbiased learning-to-rank with biased feedback", WSDM
2017, use the same ``(1/r) ** eta`` form).

**On an examined item** the user clicks with ``click_base + click_slope * utility``. A click
starts a play of ``duration * f`` seconds; the play is skipped (``f`` drawn in [0.02, 0.3])
with ``skip_base + skip_slope * (1 - utility) ** 2``, else ``f ~ Beta(2 + 6u, 1 + 2(1 - u))``
(the generator's completion); it is liked with ``like_base + like_slope * utility ** 2`` and
bought with ``buy_base + buy_slope * utility ** 2``.

**Visits.** Each user makes Poisson visits at their own stable rate, ``visits_per_day`` times
the generator's lognormal activity (mean 1, sigma 0.8 by default): heavy users stay heavy, so
the pre-period predicts the experiment period (CUPED's precondition). A visit asks for one
list of ``k`` items.

Everything is drawn from seeded ``numpy`` generators: the same seeds give the same users,
lists, clicks and seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.data.synthetic import WorldSpec
from tastebud.data.synthetic_day import DURATION
from tastebud.data.synthetic_world import World, build_world

MICROS_PER_SECOND = 1_000_000


@dataclass(frozen=True)
class Behaviour:
    """The user model's knobs (module docstring). On the default world the defaults give a
    click-through near 11% on lists ranked by true utility (mean utility 0.89) and near 3% on
    a popularity list (mean utility 0.22); about 4% of plays are skipped."""

    eta: float = 0.7
    click_base: float = 0.01
    click_slope: float = 0.3
    skip_base: float = 0.04
    skip_slope: float = 0.45
    like_base: float = 0.02
    like_slope: float = 0.3
    buy_base: float = 0.002
    buy_slope: float = 0.05
    visits_per_day: float = 1.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
                raise ValueError(f"invalid Behaviour: {name} must be a number >= 0, got {value}")
        if self.click_base + self.click_slope > 1:
            raise ValueError("invalid Behaviour: click_base + click_slope must not exceed 1")


@dataclass
class Reactions:
    """What the users did with their clicked items, one entry per click."""

    seconds: np.ndarray
    skipped: np.ndarray
    liked: np.ndarray
    bought: np.ndarray


class UserModel:
    """The latent world plus the behaviour model: utilities, visit rates, reactions."""

    def __init__(self, spec: WorldSpec, behaviour: Behaviour | None = None) -> None:
        self.spec = spec
        self.behaviour = behaviour or Behaviour()
        # The generator draws the static world from the first of its seed streams.
        stream = np.random.SeedSequence(spec.seed).spawn(1)[0]
        start_us = micros(spec.start)
        self.world: World = build_world(spec, np.random.default_rng(stream), start_us)
        existing = self.world.item_created_us < start_us
        #: Items that exist and are active at the world's start: what rankers may show.
        self.catalog = np.flatnonzero(existing & self.world.item_active)
        self.user_width = max(6, len(str(spec.users - 1)))
        self.item_width = max(6, len(str(spec.items - 1)))
        self._utility: np.ndarray | None = None

    @classmethod
    def from_truth(cls, path: Path, behaviour: Behaviour | None = None) -> UserModel:
        """The world a ``truth.json`` (or the folder holding it) describes."""
        path = Path(path)
        if path.is_dir():
            path = path / "truth.json"
        document = json.loads(path.read_text())
        return cls(spec_from_truth(document), behaviour)

    # --- ids -------------------------------------------------------------------------------

    def user_id(self, user: int) -> str:
        return f"u{user:0{self.user_width}d}"

    def item_id(self, item: int) -> str:
        return f"i{item:0{self.item_width}d}"

    def item_index(self, item_id: str) -> int | None:
        """The dense index of an external item id of this world, or None."""
        if not item_id.startswith("i") or not item_id[1:].isdigit():
            return None
        index = int(item_id[1:])
        return index if index < self.spec.items else None

    # --- truth -----------------------------------------------------------------------------

    def utility(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """True utility, shape (users, items): the generator's affinity without its noise."""
        world = self.world
        items = np.arange(self.spec.items) if items is None else np.asarray(items)
        users = np.asarray(users)
        taste = world.user_taste[users]
        best = np.maximum(taste.max(axis=1, keepdims=True), 1e-9)
        primary = taste[:, world.item_category[items]]
        second = world.item_secondary[items]
        secondary = np.where(second >= 0, taste[:, np.maximum(second, 0)] * 0.5, 0.0)
        relative = np.maximum(primary, secondary) / best
        favorite = (
            world.user_favorites[users][:, :, None] == world.item_creator[items][None, None, :]
        ).any(axis=1)
        score = 4.0 * relative - 2.2 + 1.5 * favorite + world.item_quality[items][None, :]
        return (1.0 / (1.0 + np.exp(-score))).astype(np.float32)

    def all_utility(self) -> np.ndarray:
        """Every user's utility for every catalog item (cached): (users, len(catalog))."""
        if self._utility is None:
            self._utility = self.utility(np.arange(self.spec.users), self.catalog)
        return self._utility

    def visit_rate(self, users: np.ndarray) -> np.ndarray:
        """Expected visits per day of each user: stable, heterogeneous (lognormal)."""
        return self.behaviour.visits_per_day * self.world.user_activity[np.asarray(users)]

    def examination(self, k: int) -> np.ndarray:
        """The chance each of ``k`` positions is looked at (position-based model)."""
        return np.arange(1, k + 1, dtype=float) ** -self.behaviour.eta

    def click_probability(self, utility: np.ndarray, lift: float = 1.0) -> np.ndarray:
        """Click given examined; ``lift`` multiplies it (a seeded effect), capped at 1."""
        b = self.behaviour
        return np.minimum(1.0, lift * (b.click_base + b.click_slope * utility))

    def react(self, rng: np.random.Generator, utility: np.ndarray, items: np.ndarray) -> Reactions:
        """Seconds played, skip, like and purchase for each click (module docstring)."""
        b, n = self.behaviour, len(utility)
        u = np.asarray(utility, dtype=float)
        skipped = rng.random(n) < b.skip_base + b.skip_slope * (1 - u) ** 2
        completed = np.clip(rng.beta(2 + 6 * u, 1 + 2 * (1 - u)), 0.05, 1.0)
        fraction = np.where(skipped, rng.uniform(0.02, 0.3, n), completed)
        duration = self.world.item_features[items, DURATION]
        seconds = np.maximum(1.0, np.round(duration * fraction, 1))
        liked = rng.random(n) < b.like_base + b.like_slope * u**2
        bought = rng.random(n) < b.buy_base + b.buy_slope * u**2
        return Reactions(seconds, skipped, liked, bought)

    def price(self, items: np.ndarray) -> np.ndarray:
        return self.world.item_price[np.asarray(items)]


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (as the generator counts them)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def spec_from_truth(document: dict[str, Any]) -> WorldSpec:
    """The ``WorldSpec`` a ``truth.json`` recorded, checked against its ``world_id``.

    The document stores the resolved creator count; a spec generated with ``creators=None``
    had the same count, so either form rebuilds the same latent world."""
    try:
        fields = dict(document["spec"])
        fields["start"] = datetime.fromisoformat(fields["start"])
        fields["trending_band"] = tuple(fields["trending_band"])
        spec = WorldSpec(**fields)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"truth.json: not a synthetic world's truth ({error})") from None
    expected = document.get("world_id")
    if expected and spec.world_id != expected:
        unresolved = WorldSpec(**{**fields, "creators": None})
        if unresolved.world_id == expected:
            return unresolved
        raise ValueError(f"truth.json: the spec gives world {spec.world_id}, not {expected}")
    return spec
