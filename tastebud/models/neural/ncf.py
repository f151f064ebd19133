"""Neural collaborative filtering: NeuMF (He et al. 2017), trained with PyTorch, scored with
numpy.

NeuMF fuses generalised matrix factorisation (an element-wise product of user and item
embeddings, weighted) with an MLP over the concatenated embeddings of a second pair, and
is trained as a classifier: each observed (user, item) is a positive, ``negatives``
uniformly drawn unobserved items per positive are negatives, binary cross-entropy. Rendle,
Krichene, Zhang and Anderson (2020, "Neural Collaborative Filtering vs. Matrix
Factorization Revisited") found a well-tuned dot product beats it; ``benchmarks/
bench_neural.py`` checks whether that holds here. ``mlp_layers=()`` leaves the GMF part
alone (a weighted dot product).

NeuMF learns one embedding per user, so it has no exact fold-in. A history that belongs to
no known user is placed at the mean embedding of the users who share its items (weighted by
how many they share): an approximation, said so, that needs no training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError
from tastebud.models.neural._torch import device, require_torch, to_numpy
from tastebud.models.neural.common import (
    NeuralRecommender,
    binary,
    linear,
    training,
    unit_rows,
)

SCORE_BYTES = 64 * 1024 * 1024  # the MLP's users x items x width activations per block


def _network(n_users: int, n_items: int, factors: int, layers: Sequence[int]) -> object:
    torch = require_torch()
    nn = torch.nn

    class NeuMF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user_gmf = nn.Embedding(n_users, factors)
            self.item_gmf = nn.Embedding(n_items, factors)
            width = 0
            if layers:
                self.user_mlp = nn.Embedding(n_users, layers[0] // 2)
                self.item_mlp = nn.Embedding(n_items, layers[0] // 2)
                self.mlp = nn.ModuleList(
                    nn.Linear(2 * (layers[0] // 2) if i == 0 else layers[i - 1], size)
                    for i, size in enumerate(layers)
                )
                width = layers[-1]
            self.predict = nn.Linear(factors + width, 1)
            for table in self.modules():
                if isinstance(table, nn.Embedding):
                    nn.init.normal_(table.weight, std=0.01)  # as the paper's code

        def forward(self, users: object, items: object) -> object:
            parts = [self.user_gmf(users) * self.item_gmf(items)]
            if layers:
                h = torch.cat([self.user_mlp(users), self.item_mlp(items)], dim=1)
                for layer in self.mlp:
                    h = torch.relu(layer(h))
                parts.append(h)
            return self.predict(torch.cat(parts, dim=1)).squeeze(1)

    return NeuMF()


class NCFRecommender(NeuralRecommender):
    """NeuMF: GMF (``factors``) + an MLP (``mlp_layers``; the first is the concatenated
    embedding width), fused by one output layer."""

    name = "ncf"

    def __init__(
        self,
        factors: int = 32,
        mlp_layers: Sequence[int] = (64, 32, 16),
        negatives: int = 4,
        epochs: int = 20,
        batch_size: int = 1024,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        random_state: int = 42,
        device: str | None = None,
    ) -> None:
        self.factors = factors
        self.mlp_layers = mlp_layers
        self.negatives = negatives
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device

    def _check_params(self) -> None:
        if min(self.factors, self.negatives, self.epochs, self.batch_size) < 1:
            raise ModelError("factors, negatives, epochs and batch_size must be at least 1")
        if any(int(size) < 2 for size in self.mlp_layers):
            raise ModelError("every MLP layer needs at least 2 units")
        if self.learning_rate <= 0:
            raise ModelError("learning_rate must be positive")

    def _fit(self, data: InteractionMatrix) -> None:
        self._check_params()
        torch = require_torch()
        where = device(self.device)
        layers = [int(size) for size in self.mlp_layers]
        positives = binary(self.user_items_)
        coo = positives.tocoo()
        users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        n_users, n_items = positives.shape
        if n_items < 2:
            raise ModelError("NeuMF needs at least two items to draw negatives from")
        known = np.sort(users * n_items + items)
        rng = np.random.default_rng(self.random_state)
        width = self.factors + sum(layers) + (layers[0] if layers else 0)
        step_flops = 6.0 * self.batch_size * (1 + self.negatives) * width * max(layers or [1])
        with training(self.random_state, step_flops):
            net = _network(n_users, n_items, self.factors, layers).to(where)
            optimiser = torch.optim.Adam(
                net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
            loss_fn = torch.nn.BCEWithLogitsLoss()

            def run_epoch(epoch: int) -> float:
                net.train()
                negative_users = np.repeat(users, self.negatives)
                negative_items = _draw_negatives(rng, negative_users, n_items, known)
                all_users = np.concatenate([users, negative_users])
                all_items = np.concatenate([items, negative_items])
                labels = np.concatenate([np.ones(len(users)), np.zeros(len(negative_users))])
                order = rng.permutation(len(all_users))
                total, count = 0.0, 0
                for start in range(0, len(order), self.batch_size):
                    chosen = order[start : start + self.batch_size]
                    logits = net(
                        torch.from_numpy(all_users[chosen]).to(where),
                        torch.from_numpy(all_items[chosen]).to(where),
                    )
                    target = torch.from_numpy(labels[chosen].astype(np.float32)).to(where)
                    loss = loss_fn(logits, target)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(chosen)
                    count += len(chosen)
                return total / max(count, 1)

            self._train_epochs(self.epochs, run_epoch, "NeuMF")
        self.weights_ = to_numpy(net)

    # -- numpy scoring -------------------------------------------------------------------------
    @property
    def _layers(self) -> int:
        return sum(1 for key in self.weights_ if key.startswith("mlp.") and key.endswith(".weight"))

    def _user_embeddings(self, rows: np.ndarray, histories: sp.csr_matrix) -> list[np.ndarray]:
        """[GMF, MLP] embeddings per row; fold-in (the fans' mean) for rows of -1."""
        tables = ["user_gmf.weight"] + (["user_mlp.weight"] if self._layers else [])
        out = [np.zeros((len(rows), self.weights_[t].shape[1]), np.float32) for t in tables]
        known = rows >= 0
        unknown = np.flatnonzero(~known)
        fans = None
        if len(unknown):
            fans = binary(histories[unknown]) @ binary(self.user_items_).T
            totals = np.asarray(fans.sum(axis=1)).ravel()
            fans = sp.diags(1.0 / np.maximum(totals, 1e-9)).astype(np.float32) @ fans
        for table, target in zip(tables, out, strict=True):
            target[known] = self.weights_[table][rows[known]]
            if fans is not None:
                target[unknown] = fans @ self.weights_[table]
        return out

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        w = self.weights_
        gmf_width = w["user_gmf.weight"].shape[1]
        head = w["predict.weight"][0]
        embeddings = self._user_embeddings(rows, histories)
        scores = (embeddings[0] * head[:gmf_width]) @ w["item_gmf.weight"].T + w["predict.bias"]
        if not self._layers:
            return scores.astype(np.float32)
        # The first MLP layer over [user; item] splits into a user part and an item part.
        first = w["mlp.0.weight"]
        half = w["user_mlp.weight"].shape[1]
        user_part = embeddings[1] @ first[:, :half].T + w["mlp.0.bias"]
        item_part = w["item_mlp.weight"] @ first[:, half:].T
        block = max(1, SCORE_BYTES // (4 * self.n_items * first.shape[0]))
        for start in range(0, len(rows), block):
            h = np.maximum(user_part[start : start + block, None, :] + item_part[None], 0.0)
            for layer in range(1, self._layers):
                h = np.maximum(linear(h, w, f"mlp.{layer}"), 0.0)
            scores[start : start + block] += h @ head[gmf_width:]
        return scores.astype(np.float32)

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        """Cosine of the items' embeddings (GMF and MLP tables side by side)."""
        tables = [self.weights_["item_gmf.weight"]]
        if self._layers:
            tables.append(self.weights_["item_mlp.weight"])
        vectors = unit_rows(np.hstack(tables))
        return vectors[columns] @ vectors.T


def _draw_negatives(
    rng: np.random.Generator, users: np.ndarray, n_items: int, known: np.ndarray
) -> np.ndarray:
    """Uniform items per user, redrawn (a few rounds) where they hit an observed pair."""
    items = rng.integers(0, n_items, len(users))
    for _ in range(5):
        keys = users * n_items + items
        position = np.minimum(np.searchsorted(known, keys), len(known) - 1)
        clash = np.flatnonzero(known[position] == keys)
        if not len(clash):
            break
        items[clash] = rng.integers(0, n_items, len(clash))
    return items
