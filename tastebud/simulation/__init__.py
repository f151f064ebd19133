"""The closed-loop user simulator (``tastebud simulate``, docs/experiments.md): synthetic
users with known tastes ask the real HTTP API for lists, see them with position bias and
act on their true preferences, so an A/B test run on a laptop can be checked against the
truth; and a fast path that draws many experiments from the same user model without HTTP.

Layer (docs/architecture.md): may import the experiments, the data generator, the HTTP
client and everything below them; the command line drives it.
"""
