"""Streamlit ``AppTest`` runs of one dashboard page, as ``app.py`` draws it, over a source."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest


def _page_script(page: str, url: str | None, key: str | None, home: str | None) -> None:
    """The script AppTest runs (its source is copied: it imports what it uses)."""
    import importlib

    from tastebud.config import load_settings
    from tastebud.dashboard.source import HttpSource, InProcessSource

    module = importlib.import_module(f"tastebud.dashboard.views.{page}")
    if url is not None:
        source: Any = HttpSource(url, key)
    else:
        source = InProcessSource(load_settings(home=home, online_url="memory://"))
    try:
        module.render(source)
    finally:
        source.close()


def page_test(
    page: str, url: str | None = None, key: str | None = None, home: str | None = None
) -> AppTest:
    """An AppTest of ``page`` reading ``url`` with ``key`` (or in-process over ``home``),
    run once; a test sets widgets and calls ``run()`` again."""
    test = AppTest.from_function(_page_script, args=(page, url, key, home), default_timeout=60)
    return test.run()


def messages(test: AppTest) -> dict[str, list[str]]:
    """What the page told the person, by kind; ``exception`` must stay empty."""
    return {
        "exception": [str(e.value) for e in test.exception],
        "error": [str(e.value) for e in test.error],
        "warning": [str(e.value) for e in test.warning],
        "info": [str(e.value) for e in test.info],
        "success": [str(e.value) for e in test.success],
    }


def _analysis_script(analysis_json: str) -> None:
    from tastebud.dashboard.views.experiments import show_analysis
    from tastebud.experiments.analysis import Analysis

    show_analysis(Analysis.model_validate_json(analysis_json))


def analysis_test(analysis_json: str) -> AppTest:
    """An AppTest of the experiments page's analysis part alone, drawing ``analysis_json``."""
    return AppTest.from_function(_analysis_script, args=(analysis_json,), default_timeout=60).run()
