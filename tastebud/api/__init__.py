"""The HTTP API: ``create_app(settings)`` builds the FastAPI app (see ``app.py``).

Layer (docs/architecture.md): may import every part below it; only ``cli`` imports it. The
routes of every resource live in ``routes/``, so no domain package imports ``api``.
"""
