"""Which neural families a search can afford, and for how many epochs.

A neural trial's cost is its epochs times the cost of one epoch, and an epoch's cost
grows with the interactions it passes over. So before the search, each neural family
trains one epoch on a sample of users (``PROBE_USERS``); the epoch is scaled to the whole
matrix by the ratio of interactions, and a family gets as many epochs as fit into
``TRIAL_SHARE`` of the single-model phase. A family whose fewest useful epochs do not fit
is left out, and so is every neural family when PyTorch is not installed: both are reported
(``SearchResult.skipped``), never raised.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from tastebud.data.matrix import InteractionMatrix
from tastebud.data.vocabulary import Vocabulary
from tastebud.models import make_model
from tastebud.models.base import ModelError
from tastebud.models.neural import torch_available
from tastebud.models.neural._torch import INSTALL
from tastebud.training.space import MAX_EPOCHS, MIN_EPOCHS

PROBE_USERS = 300
# Below this budget the neural families are left out: importing PyTorch and timing their
# first epochs alone take several seconds on a loaded machine (measured: 5.7 s + 5.7 s).
MIN_BUDGET_SECONDS = 60.0
# One neural trial may take at most this share of the single-model phase.
TRIAL_SHARE = 0.2


def user_sample(matrix: InteractionMatrix, size: int, random_state: int) -> InteractionMatrix:
    """The matrix restricted to ``size`` random users (all items kept)."""
    n_users = matrix.shape[0]
    if n_users <= size:
        return matrix
    rows = np.sort(np.random.default_rng(random_state).choice(n_users, size, replace=False))
    return dataclasses.replace(
        matrix,
        matrix=matrix.matrix[rows],
        negatives=matrix.negatives[rows],
        users=Vocabulary(matrix.users.id_of(rows)),
    )


def plan_neural(
    matrix: InteractionMatrix | None,
    families: list[str],
    phase_seconds: float,
    random_state: int = 42,
    min_budget: float = MIN_BUDGET_SECONDS,
) -> tuple[dict[str, int], dict[str, str]]:
    """(the most epochs each affordable neural family may train, a reason per skipped one)."""
    skipped: dict[str, str] = {}
    if not families:
        return {}, skipped
    if not torch_available():
        reason = f"PyTorch is not installed ({INSTALL})"
        return {}, dict.fromkeys(families, reason)
    if phase_seconds < min_budget * 0.8:  # the single-model phase's share
        reason = (
            f"the budget is under {min_budget:.0f} s, too short to time and train a neural model"
        )
        return {}, dict.fromkeys(families, reason)
    if matrix is None:
        raise ValueError("a matrix to time the neural families on is needed")
    cap = phase_seconds * TRIAL_SHARE
    sample = user_sample(matrix, PROBE_USERS, random_state)
    scale = matrix.nnz / max(sample.nnz, 1)
    max_epochs: dict[str, int] = {}
    for family in families:
        started = time.monotonic()
        try:
            probe = make_model(family, epochs=1, random_state=random_state).fit(sample)
        except ModelError as error:
            skipped[family] = f"one epoch on {sample.shape[0]} users failed: {error}"
            continue
        measured = float(np.sum(probe.epoch_seconds_)) or time.monotonic() - started
        epoch = measured * scale
        fits = math.floor(cap / epoch) if epoch > 0 else MAX_EPOCHS[family]
        if fits < MIN_EPOCHS[family]:
            skipped[family] = (
                f"one trial needs {MIN_EPOCHS[family]} epoch(s) of about {epoch:.1f} s "
                f"(measured on {sample.shape[0]} users, scaled to {matrix.shape[0]}); a trial "
                f"may take {cap:.0f} s of this budget"
            )
            continue
        max_epochs[family] = min(fits, MAX_EPOCHS[family])
    return max_epochs, skipped
