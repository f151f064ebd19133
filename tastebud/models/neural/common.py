"""What the neural models share: weights kept as numpy arrays, a per-epoch training log,
batches of binary user histories, and the numpy layers serving scores with."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastebud.models.base import Recommender
from tastebud.models.neural._torch import check_loss, require_torch

WEIGHT_PREFIX = "w."


class NeuralRecommender(Recommender):
    """A Recommender whose learned state is ``weights_`` (name -> float32 array, saved in
    the npz state like every other model) plus ``loss_history_`` and ``epoch_seconds_``."""

    name = "base"

    def _state(self) -> dict[str, np.ndarray]:
        state = {WEIGHT_PREFIX + key: value for key, value in self.weights_.items()}
        state["loss_history_"] = np.asarray(self.loss_history_, dtype=np.float64)
        state["epoch_seconds_"] = np.asarray(self.epoch_seconds_, dtype=np.float64)
        return state

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.weights_ = {
            key[len(WEIGHT_PREFIX) :]: value
            for key, value in state.items()
            if key.startswith(WEIGHT_PREFIX)
        }
        self.loss_history_ = state["loss_history_"]
        self.epoch_seconds_ = state["epoch_seconds_"]

    def _train_epochs(self, epochs: int, run_epoch: Callable[[int], float], label: str) -> None:
        """Run ``run_epoch(epoch) -> mean loss`` ``epochs`` times, stopping on a NaN loss."""
        losses, seconds = [], []
        for epoch in range(epochs):
            start = time.perf_counter()
            loss = float(run_epoch(epoch))
            check_loss(loss, label, epoch)
            losses.append(loss)
            seconds.append(time.perf_counter() - start)
        self.loss_history_ = np.asarray(losses, dtype=np.float64)
        self.epoch_seconds_ = np.asarray(seconds, dtype=np.float64)


# Below this many floating-point operations per training step, one thread: on small
# networks PyTorch's intra-op threads cost more in hand-offs than they save (measured on the
# contract-test models: 0.4 s on one thread against 5.6 s on two, on a loaded 2-core machine).
SMALL_STEP_FLOPS = 2e10


@contextmanager
def training(random_state: int | None, step_flops: float) -> Iterator[None]:
    """Seed torch's global generator (layer initialisation, dropout) inside the block only,
    restoring it after, so fitting one model never changes another's random stream; small
    steps run on one thread (restored after too)."""
    torch = require_torch()
    threads = torch.get_num_threads()
    if step_flops < SMALL_STEP_FLOPS:
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if random_state is None else int(random_state))
            yield
    finally:
        torch.set_num_threads(threads)


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The interaction pattern (1.0 where a user has a positive preference)."""
    result = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    result.data = (result.data > 0).astype(np.float32)
    result.eliminate_zeros()
    return result


def dense_rows(matrix: sp.csr_matrix, rows: np.ndarray, where: Any) -> Any:
    """Rows of a sparse matrix as a dense float32 tensor on ``where``."""
    torch = require_torch()
    return torch.from_numpy(matrix[rows].toarray().astype(np.float32)).to(where)


def linear(x: np.ndarray | sp.spmatrix, weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    """``x @ W.T + b`` for torch.nn.Linear weights saved as ``name.weight``/``name.bias``."""
    out = x @ weights[f"{name}.weight"].T
    return np.asarray(out, dtype=np.float32) + weights[f"{name}.bias"]


def unit_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as torch's F.normalize does."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
