"""The recommendation path: candidates, blend, re-ranking, filters, cold start, serving.

Layer (docs/architecture.md): may import ``features``, ``content``, ``signals``,
``training``, ``engines``, ``models``, ``registry``, ``data``, ``stores`` and the core;
never ``jobs`` or ``api`` (its routes are ``api/routes/recommendations.py``).
"""
