"""Data quality: checks of the event log before it trains a model, and their history.

Layer: above ``stores``, ``data`` and ``registry`` (which it reads), below ``jobs``, ``api``
and ``cli`` (which run it); nothing else imports it. ``run_checks`` (``quality.runner``) is
the entry point; docs/quality.md says what each check means and what to do when it fails.
"""
