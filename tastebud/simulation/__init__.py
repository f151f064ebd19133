"""The closed-loop user simulator (``tastebud simulate``, docs/experiments.md): synthetic
users with known tastes ask the real HTTP API for lists, see them with position bias and
act on their true preferences, so an A/B test run on a laptop can be checked against the
truth; and a fast path that draws many experiments from the same user model without HTTP.

The user model (``users``), in short:

* **World.** The synthetic generator's latent world, rebuilt from a ``truth.json`` (its spec
  and ``world_id``): the same users, items, tastes, favourite creators and ids as the world
  the server ingested.
* **True utility** of item i for user u: ``sigmoid(4 * relative_taste - 2.2 + 1.5 *
  favourite_creator + quality_i)``, the generator's interaction affinity without its noise.
* **Position bias** (position-based model, Craswell et al. 2008): position r (1 = top) is
  examined with probability ``r ** -0.7`` (Joachims et al. 2017's ``(1/r) ** eta``).
* **Click** on an examined item: ``0.01 + 0.3 * utility``. A click is a play of ``duration *
  f`` seconds; skipped (short f) with ``0.04 + 0.45 * (1 - u) ** 2``, else ``f ~ Beta(2 +
  6u, 1 + 2(1 - u))``; liked with ``0.02 + 0.3 * u ** 2``; bought with ``0.002 + 0.05 * u **
  2``. On the default test world a list ranked by truth gets a click-through near 11%, a
  popularity list near 3%.
* **Visits**: Poisson, at a stable per-user rate (the generator's lognormal activity, sigma
  0.8, times ``visits_per_day``): heavy users stay heavy, so the pre-period predicts the
  experiment period (CUPED removes about 70% of the variance of plays per user).
* Everything is seeded: the same seeds give the same users, visits, clicks and seconds.

``fast``: many experiments in numpy (GrowthBook hashing vectorised, stand-in rankers from the
truth, seeded lifts and exposure drops) as ``ExperimentData``. ``loop``: the HTTP loop, its
events naming ``context.list_id`` and position, and a per-variant summary of the truth.

Layer (docs/architecture.md): may import the experiments, the data generator, the HTTP
client and everything below them; the command line drives it.
"""
