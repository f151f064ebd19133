"""What every page shares: a call whose failure becomes a message on the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from tastebud.dashboard.source import DashboardError

T = TypeVar("T")


def attempt(call: Callable[[], T], what: str) -> T | None:
    """``call()``, or None after showing why ``what`` could not be read (never a traceback:
    every failure of the source is a ``DashboardError`` with a message for a person)."""
    try:
        return call()
    except DashboardError as error:
        st.error(f"Could not read {what}: {error}", icon=":material/error:")
        return None
