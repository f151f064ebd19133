"""The Streamlit script ``tastebud dashboard`` runs (``streamlit run`` this file).

The source comes from the environment the command sets: ``TASTEBUD_DASHBOARD_URL`` and
``TASTEBUD_DASHBOARD_KEY`` for a running server, neither for the in-process API over the
stores that the settings name. It is opened once per Streamlit process (``cache_resource``)
and shared by every session.
"""

from __future__ import annotations

import os

import streamlit as st

from tastebud.dashboard.app_env import KEY_VARIABLE, URL_VARIABLE
from tastebud.dashboard.source import DataSource, HttpSource, InProcessSource
from tastebud.dashboard.views import experiments, explorer, impact, models, operations


@st.cache_resource(show_spinner="Opening tastebud…")
def open_source(url: str | None, key: str | None) -> DataSource:
    if url:
        return HttpSource(url, key)
    from tastebud.config import load_settings  # lazy: only the in-process source reads them

    return InProcessSource(load_settings())


def main() -> None:
    st.set_page_config(page_title="tastebud", page_icon=":material/recommend:", layout="wide")
    source = open_source(os.environ.get(URL_VARIABLE) or None, os.environ.get(KEY_VARIABLE))
    st.sidebar.caption(f"Data: {source.where}")
    pages = [
        st.Page(
            lambda: explorer.render(source),
            title="Recommendations explorer",
            icon=":material/recommend:",
            url_path="explorer",
            default=True,
        ),
        st.Page(
            lambda: operations.render(source),
            title="Operations",
            icon=":material/monitoring:",
            url_path="operations",
        ),
        st.Page(
            lambda: models.render(source),
            title="Models",
            icon=":material/model_training:",
            url_path="models",
        ),
        st.Page(
            lambda: experiments.render(source),
            title="Experiments",
            icon=":material/science:",
            url_path="experiments",
        ),
        st.Page(
            lambda: impact.render(source),
            title="Business impact",
            icon=":material/calculate:",
            url_path="impact",
        ),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":  # `streamlit run` runs the script as __main__; an import does not
    main()
