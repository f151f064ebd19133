"""One simulated day of a synthetic world, vectorized: sessions, interactions, events.

Each day is drawn from its own random stream, with per-day arrays only (no Python loop per
session or event), so memory is bounded by the busiest day rather than the whole period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tastebud.data.synthetic_spec import WorldSpec
from tastebud.data.synthetic_world import FEATURES, MICROS_PER_DAY, MICROS_PER_SECOND, World

EVENT_TYPES = (
    "play",
    "like",
    "dislike",
    "skip",
    "view",
    "click",
    "add_to_cart",
    "purchase",
    "rating",
)
PLAY, LIKE, DISLIKE, SKIP, VIEW, CLICK, ADD_TO_CART, PURCHASE, RATING = range(len(EVENT_TYPES))
PAGES = ("home", "search", "item")
DURATION = FEATURES.index("duration_sec")
# Average events an interaction produces (its view or play plus follow-ups), measured on
# default worlds; it turns events_per_user_day into a session rate.
EVENTS_PER_INTERACTION = 1.5


@dataclass
class DayEvents:
    """A day's events as parallel arrays, sorted by timestamp. ``value`` is NaN for null,
    ``page`` -1 for no context, ``session`` a number unique across the whole run."""

    user: np.ndarray
    item: np.ndarray
    kind: np.ndarray
    value: np.ndarray
    timestamp_us: np.ndarray
    session: np.ndarray
    page: np.ndarray
    sessions_used: int

    def __len__(self) -> int:
        return len(self.kind)


def item_weights(world: World, spec: WorldSpec, day: int) -> np.ndarray:
    """Today's popularity of every item: base popularity, a freshness boost that halves
    every ``new_item_half_life_days``, trend boosts; zero until the item exists."""
    day_start = world.start_us + day * MICROS_PER_DAY
    age_days = (day_start - world.item_created_us) / MICROS_PER_DAY
    freshness = 1.0 + spec.new_item_boost * np.exp2(
        -np.maximum(age_days, 0) / spec.new_item_half_life_days
    )
    weights = np.where(age_days >= 0, world.item_popularity * freshness, 0.0)
    for trend in world.trends:
        if trend.start_day <= day < trend.end_day:
            weights[trend.item] *= trend.boost
    return weights


def simulate_day(
    world: World, spec: WorldSpec, day: int, rng: np.random.Generator, first_session: int
) -> DayEvents:
    """Sessions -> interactions -> events for one day; events that would fall after the end
    of the simulated day are dropped, so each day's batch stays inside it."""
    day_start = world.start_us + day * MICROS_PER_DAY
    day_end = day_start + MICROS_PER_DAY
    sessions_per_user = spec.events_per_user_day / (
        spec.interactions_per_session * EVENTS_PER_INTERACTION
    )
    weekday = (world.start_us // MICROS_PER_DAY + day + 3) % 7  # 1970-01-01 was a Thursday
    rate = world.user_activity * (sessions_per_user * world.weekly[weekday])
    session_user = np.repeat(np.arange(world.n_users), rng.poisson(rate))
    # The hourly profile is in UTC hours; a day that starts mid-hour wraps around midnight.
    hour = np.searchsorted(np.cumsum(world.hourly), rng.random(len(session_user)), side="right")
    time_of_day = np.minimum(hour, 23) * 3600 * MICROS_PER_SECOND + rng.integers(
        0, 3600 * MICROS_PER_SECOND, size=len(session_user)
    )
    session_start = day_start + (time_of_day - day_start % MICROS_PER_DAY) % MICROS_PER_DAY
    born = session_start >= world.user_created_us[session_user]
    session_user, session_start = session_user[born], session_start[born]
    n_sessions = len(session_user)

    lengths = rng.geometric(1.0 / spec.interactions_per_session, size=n_sessions)
    owner = np.repeat(np.arange(n_sessions), lengths)  # interaction -> session
    users = session_user[owner]
    items = choose_items(world, spec, day, rng, owner, session_user)
    affinity = interaction_affinity(world, rng, users, items)
    parts, busy = follow_ups(world, spec, rng, items, affinity)

    # Interactions in a session follow each other: each starts after the previous one's
    # engagement plus a short gap.
    step = busy + rng.exponential(spec.mean_gap_seconds, size=len(owner))
    elapsed = np.cumsum(step) - step
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n_sessions else np.zeros(0, int)
    elapsed -= np.repeat(elapsed[first], lengths)
    interaction_start = session_start[owner] + (elapsed * MICROS_PER_SECOND).astype(np.int64)
    page = np.where(
        rng.random(len(owner)) < spec.context_share, rng.integers(0, len(PAGES), len(owner)), -1
    )

    index = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([np.full(len(p[0]), p[1], dtype=np.int8) for p in parts])
    offset = np.concatenate([p[2] for p in parts])
    value = np.concatenate([p[3] for p in parts])
    timestamp = interaction_start[index] + (offset * MICROS_PER_SECOND).astype(np.int64)
    is_base = (kind == PLAY) | (kind == VIEW)
    keep = timestamp < day_end
    order = np.argsort(timestamp[keep], kind="stable")
    index = index[keep][order]
    return DayEvents(
        user=users[index],
        item=items[index],
        kind=kind[keep][order],
        value=value[keep][order],
        timestamp_us=timestamp[keep][order],
        session=first_session + owner[index],
        page=np.where(is_base[keep][order], page[index], -1),
        sessions_used=n_sessions,
    )


def choose_items(
    world: World,
    spec: WorldSpec,
    day: int,
    rng: np.random.Generator,
    owner: np.ndarray,
    session_user: np.ndarray,
) -> np.ndarray:
    """Pick each interaction's item through one of three channels.

    Mostly a category from the user's taste (sticking to the session's category with
    probability ``session_focus``) and an item within it by popularity; sometimes an item of a
    favourite creator; sometimes anything popular (exploration). Empty groups fall back to the
    global popularity draw.
    """
    n, users = len(owner), session_user[owner]
    weights = item_weights(world, spec, day)
    by_category = world.category_items.cumulative(weights)
    if n == 0 or by_category[-1] == 0:  # no items yet: impossible, one exists at the start
        return np.zeros(n, dtype=np.int64)
    session_category = world.sample_taste(rng, session_user)
    category = np.where(
        rng.random(n) < spec.session_focus, session_category[owner], world.sample_taste(rng, users)
    )
    items, found = world.category_items.sample(rng, by_category, category)

    channel = rng.random(n)
    by_creator = channel < spec.creator_share
    if by_creator.any() and world.user_favorites.shape[1] > 0:
        picks = rng.integers(0, world.user_favorites.shape[1], size=int(by_creator.sum()))
        creators = world.user_favorites[users[by_creator], picks]
        cumulative = world.creator_items.cumulative(weights)
        chosen, creator_found = world.creator_items.sample(rng, cumulative, creators)
        rows = np.flatnonzero(by_creator)[creator_found]
        items[rows], found[rows] = chosen[creator_found], True

    explore = (channel >= spec.creator_share) & (channel < spec.creator_share + spec.explore_share)
    resample = explore | ~found
    items[resample] = world.category_items.sample_any(rng, by_category, int(resample.sum()))
    return items


def interaction_affinity(
    world: World, rng: np.random.Generator, users: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """How much a user likes an item, in (0, 1): taste for its categories relative to the
    user's favourite, a favourite-creator bonus, item quality and noise."""
    taste = world.user_taste
    best = taste[users].max(axis=1) if len(users) else np.zeros(0)
    primary = taste[users, world.item_category[items]]
    second = world.item_secondary[items]
    secondary = np.where(second >= 0, taste[users, np.maximum(second, 0)] * 0.5, 0.0)
    relative = np.maximum(primary, secondary) / np.maximum(best, 1e-9)
    favorite = (world.user_favorites[users] == world.item_creator[items][:, None]).any(axis=1)
    score = (
        4.0 * relative
        - 2.2
        + 1.5 * favorite
        + world.item_quality[items]
        + rng.normal(0.0, 0.6, len(users))
    )
    return 1.0 / (1.0 + np.exp(-score))


def follow_ups(
    world: World,
    spec: WorldSpec,
    rng: np.random.Generator,
    items: np.ndarray,
    affinity: np.ndarray,
) -> tuple[list[tuple[np.ndarray, int, np.ndarray, np.ndarray]], np.ndarray]:
    """Each interaction's events as (interaction index, type, seconds after start, value),
    and how long the interaction keeps the user busy.

    A play or a view always happens. Plays last longer, are skipped less and liked more
    when affinity is high; views lead to click -> add_to_cart -> purchase with probabilities
    that rise with affinity. Ratings (1-5 in halves) track affinity.
    """
    n = len(items)
    a = affinity
    nan = np.full(n, np.nan)
    is_play, skipped, played, dwell = _plays_and_views(world, spec, rng, items, a)
    engaged = np.where(is_play, played, dwell)

    clicked = ~is_play & (rng.random(n) < 0.08 + 0.5 * a)
    click_at = dwell * rng.uniform(0.3, 1.0, n)
    carted = clicked & (rng.random(n) < 0.02 + 0.3 * a**2)
    cart_at = click_at + rng.uniform(5.0, 90.0, n)
    bought = carted & (rng.random(n) < 0.2 + 0.6 * a)
    buy_at = cart_at + rng.uniform(30.0, 400.0, n)
    price = world.item_price[items]

    scale = np.where(is_play, 1.0, 0.5)
    draw = rng.random(n)
    p_like = (0.02 + 0.35 * a**2) * scale
    liked = draw < p_like
    disliked = ~liked & (draw < p_like + (0.01 + 0.15 * (1 - a) ** 2) * scale)
    opinion_at = engaged * rng.uniform(0.2, 1.0, n)

    busy = np.maximum(engaged, np.where(bought, buy_at, np.where(carted, cart_at, 0.0)))
    rated = rng.random(n) < spec.rating_share
    rate_at = busy + rng.uniform(1.0, 30.0, n)
    stars = np.clip(np.round(2 * (1 + 4 * a + rng.normal(0, 0.5, n))) / 2, 1.0, 5.0)
    busy = np.where(rated, rate_at, busy)

    everyone = np.arange(n)
    parts = [
        (everyone, PLAY, np.zeros(n), played),
        (everyone, VIEW, np.zeros(n), nan),
        (everyone, SKIP, played, played),
        (everyone, LIKE, opinion_at, nan),
        (everyone, DISLIKE, opinion_at, nan),
        (everyone, CLICK, click_at, nan),
        (everyone, ADD_TO_CART, cart_at, price),
        (everyone, PURCHASE, buy_at, price),
        (everyone, RATING, rate_at, stars),
    ]
    masks = [is_play, ~is_play, skipped, liked, disliked, clicked, carted, bought, rated]
    return [(i[m], k, o[m], v[m]) for (i, k, o, v), m in zip(parts, masks, strict=True)], busy


def _plays_and_views(
    world: World, spec: WorldSpec, rng: np.random.Generator, items: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which interactions are plays (the rest are views), which plays are skipped, seconds
    played, and seconds a view dwells: longer and fewer skips when affinity ``a`` is high."""
    n = len(items)
    is_play = rng.random(n) < spec.play_share
    duration = world.item_features[items, DURATION]
    skipped = is_play & (rng.random(n) < 0.04 + 0.45 * (1 - a) ** 2)
    completed = np.clip(rng.beta(2 + 6 * a, 1 + 2 * (1 - a)), 0.05, 1.0)
    fraction = np.where(skipped, rng.uniform(0.02, 0.3, n), completed)
    played = np.maximum(1.0, np.round(duration * fraction, 1))
    dwell = np.round(2.0 + rng.exponential(8.0 + 40.0 * a), 1)
    return is_play, skipped, played, dwell
