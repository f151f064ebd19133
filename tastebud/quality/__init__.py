"""Data quality: checks of the event log before it trains a model, and their history.

Layer (docs/architecture.md): may import ``data``, ``registry`` (the production model's
training snapshot), ``stores`` and the core; only ``jobs``, ``api`` and ``cli`` import it.
``run_checks`` (``quality.runner``) is the entry point; docs/quality.md says what each check
means and what to do when it fails.
"""
