"""The recommendations explorer: pick a user, see what they did lately and what tastebud
ranks for them and why; move the ranking controls and the list is ranked again with them
as request overrides (``POST /v1/recommendations`` with ``ranking``); similar items for any
item; the list a new user gets from a few picked items (cold start)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from tastebud.dashboard.source import DataSource
from tastebud.dashboard.views.common import attempt
from tastebud.ranking_config import RankingSettings

DEFAULTS = RankingSettings()
# (label, override path, default, low, high, step, help)
CONTROLS: list[tuple[str, tuple[str, str], float, float, float, float, str]] = [
    (
        "Blend alpha",
        ("blend", "alpha"),
        DEFAULTS.blend.alpha,
        0.0,
        1.0,
        0.05,
        "Weight of collaborative filtering against content similarity.",
    ),
    (
        "Diversity",
        ("mmr", "diversity"),
        DEFAULTS.mmr.diversity,
        0.0,
        1.0,
        0.05,
        "MMR: 0 keeps the relevance order, 1 spreads the list as far as it goes.",
    ),
    (
        "Recency boost",
        ("recency", "weight"),
        DEFAULTS.recency.weight,
        0.0,
        1.0,
        0.05,
        "How much new items are lifted.",
    ),
    (
        "Creator cap",
        ("creator_cap", "max_share"),
        DEFAULTS.creator_cap.max_share,
        0.05,
        1.0,
        0.05,
        "The largest share of the list one creator may have.",
    ),
]


def overrides(values: dict[tuple[str, str], float]) -> dict[str, Any]:
    """The ``ranking`` overrides for the controls moved off tastebud's defaults (the server's
    own settings stand for the others)."""
    out: dict[str, dict[str, float]] = {}
    for _label, path, default, *_rest in CONTROLS:
        value = values[path]
        if abs(value - default) > 1e-9:
            out.setdefault(path[0], {})[path[1]] = round(value, 4)
    return out


def _controls() -> tuple[dict[str, Any], int]:
    st.sidebar.subheader("Ranking controls")
    values = {}
    for label, path, default, low, high, step, help_text in CONTROLS:
        values[path] = st.sidebar.slider(
            label, low, high, float(default), step, help=help_text, key=f"ctl-{'.'.join(path)}"
        )
    k = st.sidebar.slider("k (list length)", 1, 50, 10, key="ctl-k")
    return overrides(values), k


def _candidates(source: DataSource, search: str) -> tuple[list[str], str]:
    """The users the picker offers and its label: the first 500 in id order, or (with a
    search) the ids that start with it, read from the API's id-ordered pages
    (``GET /v1/users?after=SEARCH``: every id with that prefix sorts right after it), so any
    user of the catalog can be reached, not only the first 500."""
    if not search:
        listing = attempt(lambda: source.users(limit=500), "the users")
        if listing is None:
            return [], "User"
        return listing["users"], f"User ({listing['total']:,} in the catalog; type to search)"
    found = attempt(lambda: source.users(after=search, limit=500), "the users")
    if found is None:
        return [], "User"
    matches = [user for user in found["users"] if user.startswith(search)]
    more = " (the first 500)" if len(matches) == 500 else ""
    return matches, f"User ({len(matches):,} ids after {search!r} start with it{more})"


def _pick_user(source: DataSource) -> str | None:
    search = st.text_input(
        "Search users by id", key="user-search", placeholder="the start of a user id"
    ).strip()
    options, label = _candidates(source, search)
    if search and not options:
        st.info(f"No user id starts with {search!r} (after it in id order).")
    left, right = st.columns([2, 1])
    # ?user=ID in the address opens that user (a link to share, or to start from).
    typed = right.text_input(
        "…or type a user id", value=st.query_params.get("user", ""), key="typed-user"
    ).strip()
    picked = left.selectbox(label, options, index=0 if options else None, key="picked-user")
    return typed or picked


def _history(source: DataSource, user_id: str) -> None:
    history = attempt(lambda: source.history(user_id, limit=20), f"the history of {user_id}")
    if history is None:
        return
    if not history["known"]:
        st.warning(
            f"No user {user_id!r} is known to tastebud: the list below is what an unknown "
            "user gets (popular and trending).",
            icon=":material/person_off:",
        )
        return
    st.subheader("Recent history")
    if not history["events"]:
        st.info(f"{user_id} has no events yet: a cold user, ranked from popularity and trends.")
        return
    rows = [
        {
            "when": event["timestamp"][:19].replace("T", " "),
            "event": event["event_type"],
            "title": event["title"] or event["item_id"],
            "creator": event["creator"],
            "categories": ", ".join(event["categories"]),
            "item_id": event["item_id"],
        }
        for event in history["events"]
    ]
    st.dataframe(rows, hide_index=True, width="stretch", height=260)


def _list_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "rank": rank,
            "title": item.get("title") or item["item_id"],
            "creator": item.get("creator"),
            "score": round(float(item["score"]), 4),
            "sources": ", ".join(item.get("sources") or []),
            "why": item.get("explanation"),
            "item_id": item["item_id"],
        }
        for rank, item in enumerate(items, 1)
    ]


def _recommendations(
    source: DataSource, user_id: str, ranking: dict[str, Any], k: int
) -> list[str]:
    answer = attempt(
        lambda: source.recommend(user_id=user_id, k=k, ranking=ranking),
        f"the recommendations of {user_id}",
    )
    if answer is None:
        return {}
    result, seconds = answer
    st.subheader("Recommended")
    st.caption(
        f"user {user_id} · model {result['model_version'] or 'none'} · "
        f"segment {result['segment']} · "
        f"{seconds * 1000:.0f} ms · overrides {ranking or 'none (server settings)'}"
        + (" · degraded: " + ", ".join(result["degraded_reasons"]) if result["degraded"] else "")
    )
    # A table, not a data grid: its cells are text a browser test (and a screen reader) reads.
    st.table(_list_rows(result["items"]), hide_index=True)
    return {item["item_id"]: _label(item) for item in result["items"]}


def _label(item: dict[str, Any]) -> str:
    return f"{item.get('title') or item['item_id']} — {item.get('creator') or '?'}"


def _similar(source: DataSource, suggestions: dict[str, str]) -> None:
    st.subheader("Similar items")
    left, right = st.columns([2, 1])
    typed = right.text_input("…or type an item id", key="typed-item").strip()
    picked = left.selectbox(
        "Item (from the list above)",
        list(suggestions),
        index=0 if suggestions else None,
        format_func=lambda item_id: suggestions.get(item_id, item_id),
        key="sim-item",
    )
    item_id = typed or picked
    if not item_id:
        st.info("Pick an item to see what is like it.")
        return
    answer = attempt(lambda: source.similar(item_id, k=10), f"the items similar to {item_id!r}")
    if answer is not None:
        rows = [
            {
                "title": item.get("title") or item["item_id"],
                "creator": item.get("creator"),
                "score": round(float(item.get("score", 0.0)), 4),
                "sources": ", ".join(item.get("sources") or []),
                "item_id": item["item_id"],
            }
            for item in answer["items"]
        ]
        st.dataframe(rows, hide_index=True, width="stretch")


def _cold_start(source: DataSource, ranking: dict[str, Any], k: int) -> None:
    st.subheader("Cold start: a new user picks a few items")
    popular = attempt(lambda: source.popular(k=50), "the popular items")
    if popular is None:
        return
    labels = {item["item_id"]: _label(item) for item in popular["items"]}
    picked = st.multiselect(
        "Items the new user liked",
        list(labels),
        format_func=labels.get,
        key="cold-items",
        max_selections=10,
    )
    if not picked:
        st.info(
            "Pick one or more items: the list is ranked from them alone (an anonymous session)."
        )
        return
    answer = attempt(
        lambda: source.recommend(recent_items=picked, k=k, ranking=ranking), "the cold-start list"
    )
    if answer is not None:
        st.dataframe(_list_rows(answer[0]["items"]), hide_index=True, width="stretch")


def render(source: DataSource) -> None:
    st.title("Recommendations explorer")
    ranking, k = _controls()
    user_id = _pick_user(source)
    if not user_id:
        st.info("No users yet: ingest some events, or type a user id.")
        _cold_start(source, ranking, k)
        return
    listed, history = st.columns([3, 2])
    with listed:
        ranked = _recommendations(source, user_id, ranking, k)
    with history:
        _history(source, user_id)
    _similar(source, ranked)
    _cold_start(source, ranking, k)
