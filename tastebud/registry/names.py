"""The alias names, apart from the pydantic models of ``aliases.py``, so that command-line
help can list them without importing pydantic (CLI start-up, docs/benchmarks.md); and the
name of the file a trained version records how it was trained in, which the API reads
without importing the training package (Optuna, matplotlib)."""

from __future__ import annotations

ALIASES: tuple[str, ...] = ("production", "canary", "shadow")
TRAINING_FILE = "training.json"
