"""The Streamlit dashboard (``tastebud dashboard``, docs/dashboard.md): the recommendations
explorer, operations, models and a business-impact calculator, each page its own module
under ``views/``. Every page reads through one ``DataSource`` (``source.py``): a running
server's HTTP API with a read key, or the same API app served in this process over the
embedded stores.

It may import ``api`` (the app it serves in-process) and the core; only ``cli``, above it,
imports it, and no domain package or ``api`` may (the layers in docs/architecture.md)."""
