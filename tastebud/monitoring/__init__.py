"""Model monitoring: how the production model serves and how well it still ranks, and the
retraining triggers that act on it.

Layer (docs/architecture.md): beside ``features``, under ``ranking``, which calls the
serving hook (``monitoring.serving``, Prometheus only) where it observes a list served.
The package may import ``training`` (to refit a version's recipe for its training-time
baseline), ``evaluation``, ``quality``, ``registry``, ``data``, ``stores`` and the core;
``ranking``, ``jobs``, ``api`` and ``cli`` import it. ``run_monitor``
(``monitoring.runner``) is the entry point; docs/monitoring.md says what each check means
and what to do.
"""
