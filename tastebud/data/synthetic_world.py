"""The static half of a synthetic world: categories, creators, items and users.

Everything here is latent structure that a recommender should be able to recover (category
tastes, creator affinities, power-law popularity, content features that follow categories).
``synthetic_day`` simulates behaviour on top of it and ``synthetic`` writes it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tastebud.data.sampling import GroupedSampler
from tastebud.data.synthetic_spec import WorldSpec

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND

FEATURES = ("tempo", "energy", "danceability", "valence", "acousticness", "duration_sec")
# Per-category means are drawn from these ranges; items add noise and are clipped to LIMITS.
FEATURE_MEAN_RANGES = np.array(
    [(75, 165), (0.15, 0.9), (0.15, 0.9), (0.1, 0.9), (0.05, 0.9), (150, 330)], dtype=float
)
FEATURE_NOISE = np.array([9.0, 0.08, 0.08, 0.1, 0.08, 35.0])
FEATURE_LIMITS = np.array([(50, 210), (0, 1), (0, 1), (0, 1), (0, 1), (45, 720)], dtype=float)
FEATURE_DECIMALS = (1, 3, 3, 3, 3, 0)

DEVICES = ("web", "mobile", "other")
DEVICE_MIX = (0.36, 0.58, 0.06)
LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "hi-IN")
LOCALE_MIX = (0.34, 0.07, 0.1, 0.08, 0.07, 0.13, 0.08, 0.13)
# Weekly activity, Monday first: a little busier towards and over the weekend.
WEEKLY_SHAPE = np.array([0.95, 0.93, 0.95, 0.98, 1.04, 1.12, 1.03])

TAGS_PER_CATEGORY = 8
# fmt: off
TAG_WORDS = (
    "chill", "upbeat", "dark", "dreamy", "raw", "lush", "minimal", "epic", "lofi", "live",
    "acoustic", "retro", "modern", "moody", "bright", "heavy", "soft", "groovy", "mellow",
    "fast", "slow", "vocal", "instrumental", "cinematic", "warm", "cold", "quirky", "classic",
    "indie", "deluxe", "budget", "eco", "handmade", "vintage", "sporty", "cozy", "bold",
    "gritty", "playful", "serene", "urban", "rural", "night", "summer", "winter", "party",
    "focus", "workout",
)
TITLE_ADJECTIVES = (
    "Silent", "Golden", "Electric", "Broken", "Velvet", "Neon", "Hidden", "Wild", "Paper",
    "Crimson", "Lonely", "Endless", "Frozen", "Midnight", "Little", "Burning", "Quiet",
    "Distant", "Sweet", "Hollow", "Bright", "Secret", "Restless", "Northern",
)
TITLE_NOUNS = (
    "River", "Heart", "Machine", "Garden", "City", "Ocean", "Mirror", "Road", "Signal",
    "Forest", "Dream", "Engine", "Window", "Harbor", "Echo", "Lantern", "Storm", "Kingdom",
    "Letter", "Meadow", "Circuit", "Island", "Shadow", "Horizon",
)
# fmt: on


@dataclass(frozen=True)
class Trend:
    """A popularity injection: ``item`` is ``boost`` times as popular on days [start, end)."""

    item: int
    start_day: int
    end_day: int
    boost: float


@dataclass
class World:
    """The latent and observable state of a world; arrays are indexed by dense integer ids."""

    start_us: int
    category_names: list[str]
    category_weights: np.ndarray
    feature_means: np.ndarray  # (categories, features)
    price_medians: np.ndarray
    category_tags: list[list[str]]
    creator_home: np.ndarray
    creator_weights: np.ndarray
    item_category: np.ndarray
    item_secondary: np.ndarray  # -1 when the item has one category
    item_creator: np.ndarray
    item_popularity: np.ndarray
    item_quality: np.ndarray
    item_created_us: np.ndarray
    item_features: np.ndarray  # (items, features)
    item_price: np.ndarray
    item_tags: np.ndarray  # (items, 4) indices into the category's tag list, -1 padded
    item_title_words: np.ndarray  # (items, 2) adjective and noun indices
    item_active: np.ndarray
    user_taste: np.ndarray  # (users, categories) float32, rows sum to 1
    user_taste_cdf: np.ndarray  # flat: row u holds u + cumsum(taste[u]), see sample_taste
    user_top_categories: np.ndarray  # (users, min(3, categories))
    user_favorites: np.ndarray  # (users, favorite_creators)
    user_activity: np.ndarray
    user_device: np.ndarray
    user_locale: np.ndarray
    user_created_us: np.ndarray
    trends: list[Trend]
    hourly: np.ndarray  # 24 weights summing to 1, UTC hours
    weekly: np.ndarray  # 7 multipliers with mean 1, Monday first
    category_items: GroupedSampler
    creator_items: GroupedSampler

    @property
    def n_users(self) -> int:
        return len(self.user_created_us)

    @property
    def n_categories(self) -> int:
        return len(self.category_names)

    def sample_taste(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """A category per user drawn from that user's taste (one searchsorted for all rows)."""
        width = self.n_categories
        queries = users + rng.random(len(users))
        index = np.searchsorted(self.user_taste_cdf, queries, side="right") - users * width
        return np.clip(index, 0, width - 1)


def hourly_profile() -> np.ndarray:
    """Share of sessions starting in each UTC hour: morning and lunch bumps, evening peak."""
    hours = np.arange(24) + 0.5

    def bump(center: float, width: float) -> np.ndarray:
        distance = (hours - center + 12) % 24 - 12
        return np.exp(-0.5 * (distance / width) ** 2)

    weights = 0.12 + 0.45 * bump(8, 1.5) + 0.35 * bump(12.5, 1.2) + 1.0 * bump(20.5, 2.2)
    return weights / weights.sum()


def arrival_times(
    rng: np.random.Generator,
    count: int,
    initial_fraction: float,
    start_us: int,
    days: int,
    history_days: int,
) -> np.ndarray:
    """Sorted creation times: a share before ``start`` (back to ``history_days``), the rest
    spread uniformly over the simulated period. At least one entity exists at the start."""
    initial = min(count, max(1, round(initial_fraction * count)))
    before = start_us - rng.integers(1, history_days * MICROS_PER_DAY, size=initial)
    during = start_us + rng.integers(0, days * MICROS_PER_DAY, size=count - initial)
    return np.sort(np.concatenate([before, during]))


def build_world(spec: WorldSpec, rng: np.random.Generator, start_us: int) -> World:
    """Draw the whole static world from ``rng``; the same spec and stream give the same world."""
    n_cat, n_creators = spec.categories, spec.resolved_creators
    category_weights, feature_means, price_medians, category_tags = _categories(n_cat, rng)
    creator_home = rng.choice(n_cat, size=n_creators, p=category_weights)
    creator_weights = rng.pareto(1.5, size=n_creators) + 1.0
    items = build_items(spec, rng, start_us, category_weights, creator_home, creator_weights)
    item_category, item_secondary, item_creator = items[:3]
    category_items, creator_items = _samplers(spec, items[:3], n_cat, n_creators)
    item_features = draw_features(rng, feature_means, item_category, item_secondary)
    item_price = np.maximum(
        0.49, np.round(price_medians[item_category] * rng.lognormal(0, 0.35, spec.items), 2)
    )
    item_tags = _item_tags(spec.items, rng)

    users = build_users(spec, rng, start_us, category_weights)
    world = World(
        start_us=start_us,
        category_names=[f"genre-{c:02d}" for c in range(n_cat)],
        category_weights=category_weights,
        feature_means=feature_means,
        price_medians=price_medians,
        category_tags=category_tags,
        creator_home=creator_home,
        creator_weights=creator_weights,
        item_category=item_category,
        item_secondary=item_secondary,
        item_creator=item_creator,
        item_popularity=items[3],
        item_quality=items[4],
        item_created_us=items[5],
        item_features=item_features,
        item_price=item_price,
        item_tags=item_tags,
        item_title_words=rng.integers(0, len(TITLE_NOUNS), size=(spec.items, 2)),
        item_active=rng.random(spec.items) >= spec.inactive_fraction,
        user_favorites=np.zeros((spec.users, 0), dtype=np.int64),
        trends=draw_trends(spec, rng, items[3], items[5], start_us),
        hourly=hourly_profile(),
        weekly=WEEKLY_SHAPE / WEEKLY_SHAPE.mean() if spec.weekly else np.ones(7),
        category_items=category_items,
        creator_items=creator_items,
        **users,
    )
    world.user_favorites = draw_favorites(spec, rng, world)
    return world


def _categories(
    n_cat: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]]]:
    """Each category's weight, content-feature means, median price and tag words."""
    category_weights = rng.dirichlet(np.full(n_cat, 4.0))
    low, high = FEATURE_MEAN_RANGES[:, 0], FEATURE_MEAN_RANGES[:, 1]
    feature_means = low + (high - low) * rng.random((n_cat, len(FEATURES)))
    price_medians = np.exp(rng.uniform(np.log(2.0), np.log(80.0), size=n_cat))
    category_tags = [
        [TAG_WORDS[i] for i in rng.choice(len(TAG_WORDS), TAGS_PER_CATEGORY, replace=False)]
        for _ in range(n_cat)
    ]
    return category_weights, feature_means, price_medians, category_tags


def _samplers(
    spec: WorldSpec, items: tuple[np.ndarray, ...], n_cat: int, n_creators: int
) -> tuple[GroupedSampler, GroupedSampler]:
    """Samplers of the items in a category and of a creator's items. Items are drawn within
    their primary category, and at 0.3 weight within a secondary one."""
    item_category, item_secondary, item_creator = items
    factors = np.where(np.arange(2 * spec.items) < spec.items, 1.0, 0.3)
    has_second = np.concatenate([np.ones(spec.items, bool), item_secondary >= 0])
    category_items = GroupedSampler(
        np.concatenate([item_category, item_secondary])[has_second],
        np.tile(np.arange(spec.items), 2)[has_second],
        factors[has_second],
        n_cat,
    )
    creator_items = GroupedSampler(
        item_creator, np.arange(spec.items), np.ones(spec.items), n_creators
    )
    return category_items, creator_items


def _item_tags(n_items: int, rng: np.random.Generator) -> np.ndarray:
    """Two to four of its category's tags per item (indices; -1 pads), earlier tags likelier."""
    tag_keys = rng.exponential(size=(n_items, TAGS_PER_CATEGORY)) / (
        1.0 / np.arange(1, TAGS_PER_CATEGORY + 1)
    )
    item_tags = np.argsort(tag_keys, axis=1)[:, :4]
    item_tags[np.arange(4) >= rng.integers(2, 5, size=(n_items, 1))] = -1
    return item_tags


def build_items(
    spec: WorldSpec,
    rng: np.random.Generator,
    start_us: int,
    category_weights: np.ndarray,
    creator_home: np.ndarray,
    creator_weights: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Category, secondary, creator, popularity, quality and creation time of every item.

    Every creator gets at least one item when there are enough items; the rest go to
    creators in proportion to their (Pareto) weight, so popular creators have big catalogs.
    """
    n_items, n_creators = spec.items, len(creator_home)
    covered = min(n_items, n_creators)
    extra = rng.choice(n_creators, n_items - covered, p=creator_weights / creator_weights.sum())
    item_creator = rng.permutation(np.concatenate([rng.permutation(n_creators)[:covered], extra]))
    off_home = rng.random(n_items) >= spec.creator_category_loyalty
    item_category = np.where(
        off_home,
        rng.choice(len(category_weights), n_items, p=category_weights),
        creator_home[item_creator],
    )
    # A secondary category, different from the primary, for a share of items.
    shift = rng.integers(1, max(2, len(category_weights)), size=n_items)
    item_secondary = np.where(
        (rng.random(n_items) < spec.secondary_category_share) & (len(category_weights) > 1),
        (item_category + shift) % len(category_weights),
        -1,
    )
    popularity = rng.pareto(spec.popularity_exponent, n_items) + 1.0
    quality = rng.normal(0.0, 0.5, n_items)
    created = arrival_times(rng, n_items, spec.initial_item_fraction, start_us, spec.days, 365)
    return item_category, item_secondary, item_creator, popularity, quality, created


def draw_features(
    rng: np.random.Generator, means: np.ndarray, primary: np.ndarray, secondary: np.ndarray
) -> np.ndarray:
    """Per-category means (blended 70/30 with the secondary category) plus noise, clipped."""
    center = means[primary]
    has_second = secondary >= 0
    center[has_second] = 0.7 * center[has_second] + 0.3 * means[secondary[has_second]]
    values = center + rng.normal(size=center.shape) * FEATURE_NOISE
    return np.clip(values, FEATURE_LIMITS[:, 0], FEATURE_LIMITS[:, 1])


def build_users(
    spec: WorldSpec, rng: np.random.Generator, start_us: int, category_weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Sparse Dirichlet tastes, lognormal activity, a stable device and locale per user."""
    n_users, n_cat = spec.users, len(category_weights)
    alpha = spec.taste_concentration * n_cat * category_weights
    taste = rng.standard_gamma(alpha, size=(n_users, n_cat))
    empty = taste.sum(axis=1) <= 0
    taste[empty, rng.integers(0, n_cat, size=int(empty.sum()))] = 1.0
    taste /= taste.sum(axis=1, keepdims=True)
    cdf = np.cumsum(taste, axis=1)
    cdf[:, -1] = 1.0
    cdf += np.arange(n_users)[:, None]
    sigma = spec.activity_sigma
    return {
        "user_taste": taste.astype(np.float32),
        "user_taste_cdf": cdf.ravel(),
        "user_top_categories": np.argsort(-taste, axis=1, kind="stable")[:, : min(3, n_cat)],
        "user_activity": rng.lognormal(-0.5 * sigma**2, sigma, n_users),
        "user_device": rng.choice(len(DEVICES), n_users, p=DEVICE_MIX).astype(np.int8),
        "user_locale": rng.choice(len(LOCALES), n_users, p=LOCALE_MIX).astype(np.int8),
        "user_created_us": arrival_times(
            rng, n_users, spec.initial_user_fraction, start_us, spec.days, 730
        ),
    }


def draw_favorites(spec: WorldSpec, rng: np.random.Generator, world: World) -> np.ndarray:
    """Favourite creators: a category from the user's taste, then a creator at home there
    (by creator popularity); any creator when that category has no home creators."""
    count = spec.favorite_creators
    users = np.repeat(np.arange(spec.users), count)
    categories = world.sample_taste(rng, users)
    n_creators = len(world.creator_home)
    by_home = GroupedSampler(
        world.creator_home, np.arange(n_creators), np.ones(n_creators), world.n_categories
    )
    cumulative = by_home.cumulative(world.creator_weights)
    favorites, found = by_home.sample(rng, cumulative, categories)
    missing = ~found
    favorites[missing] = by_home.sample_any(rng, cumulative, int(missing.sum()))
    return favorites.reshape(spec.users, count)


def draw_trends(
    spec: WorldSpec,
    rng: np.random.Generator,
    popularity: np.ndarray,
    created: np.ndarray,
    start_us: int,
) -> list[Trend]:
    """Boost a few items that exist at the start, each over a window of whole days.

    Candidates sit within the ``trending_band`` popularity quantiles (default the 50th to
    90th percentile): popular enough to be seen, not so dominant that the boost saturates
    their category. The last ``trending_at_end`` trends start on the final day and run to
    the end, so that a detector run at the end of the world has a fresh onset to find.
    """
    existing = np.flatnonzero(created < start_us)
    low, high = np.quantile(popularity[existing], spec.trending_band)
    candidates = existing[(popularity[existing] >= low) & (popularity[existing] <= high)]
    count = min(spec.trending_items, len(candidates))
    chosen = np.sort(rng.choice(candidates, count, replace=False))
    at_end = set(range(count - min(spec.trending_at_end, count), count))
    trends = []
    for position, item in enumerate(chosen):
        length = int(rng.integers(1, max(1, spec.days // 4) + 1))
        first = int(rng.integers(0, spec.days - length + 1))
        boost = round(float(spec.trending_boost * rng.uniform(0.6, 1.4)), 2)
        if position in at_end:
            first, length = spec.days - 1, 1
        trends.append(Trend(int(item), first, first + length, boost))
    return trends
