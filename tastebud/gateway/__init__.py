"""The event gateway's logic, free of HTTP: validation and enrichment of incoming events,
durable appends with retries, the dead-letter queue, API keys and rate limits.
``tastebud.api`` is the HTTP layer over it.

Layer (docs/architecture.md): may import ``stores`` and the core only, so ingestion loads no
model library (``tests/gateway/test_light_imports.py``).
"""
