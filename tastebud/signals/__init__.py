"""Signals: the engagement computations over a window of events that more than one part
needs, so they agree on what "popular" or "affine" means. The ``popularity`` and
``affinity`` jobs publish them; the feature store stores them as feature views.

Lives here: ``window`` (what a computation reads: settings, stores, an interval, a
cancellation check), ``errors`` (the refusals: too little data), ``catalog`` (the catalog
as one Arrow table), ``popularity`` (time-decayed item scores), ``affinity`` (users'
category affinities). May import: the core modules, ``stores``, ``data``, ``engines``
(where the work runs). Never ``features``, ``jobs``, ``ranking`` or ``api``.
"""
