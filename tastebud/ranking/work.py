"""The state of one ranking request as it moves through the stages of the pipeline.

Each stage reads what earlier stages left here and adds its own part; nothing outlives
the request. Positions are item-space positions of the ``Snapshot``; per-candidate arrays
are aligned with ``positions``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tastebud.ranking.history import History
from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import RankRequest, UserContext

_EMPTY = np.zeros(0, np.int64)


class CandidateSet:
    """The candidates of every source, merged once into arrays (no per-item Python loop):
    each position once, in order of first proposal (the sources' order; ``max_total``
    truncates and the selection breaks ties in this order), with the OR of the source
    bits of every proposal."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.bits: list[int] = []

    def add(self, positions: np.ndarray, bit: int) -> np.ndarray:
        """Propose ``positions`` (-1, unknown, dropped); returns the proposed ones."""
        positions = np.asarray(positions, dtype=np.int64)
        positions = positions[positions >= 0]
        self.chunks.append(positions)
        self.bits.append(bit)
        return positions

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, source bits), each position once, first proposal first."""
        everything = np.concatenate(self.chunks) if self.chunks else _EMPTY
        if not len(everything):
            return everything, np.zeros(0, np.int64)
        tags = np.repeat(np.asarray(self.bits, np.int64), [len(c) for c in self.chunks])
        # A stable sort groups equal positions with their first proposal at the group start.
        order = np.argsort(everything, kind="stable")
        ordered = everything[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        bits = np.bitwise_or.reduceat(tags[order], starts)
        first = order[starts]
        by_first = np.argsort(first)
        return everything[first[by_first]], bits[by_first]


@dataclass
class Blended:
    """The blend's terms per candidate (each min-max normalised) and their weights, kept
    for the explanations (which source led an item's score)."""

    cf: np.ndarray
    content: np.ndarray
    prior: np.ndarray
    cf_weight: float = 0.0
    content_weight: float = 0.0
    ramp: float = 0.0  # personal share: 0 with no personal signal, 1 once warm
    personal_signal: bool = False


@dataclass
class Work:
    snapshot: Snapshot
    context: UserContext
    request: RankRequest
    now: float  # epoch seconds
    in_category: np.ndarray | None  # bool per item-space position, when a category is asked
    history: History
    user_vector: np.ndarray | None = None  # factor models
    dense: np.ndarray | None = None  # other models: a score per model item
    found: CandidateSet = field(default_factory=CandidateSet)
    listed: dict[int, np.ndarray] = field(default_factory=dict)  # source bit -> its list
    positions: np.ndarray = field(default_factory=lambda: _EMPTY)
    bits: np.ndarray = field(default_factory=lambda: _EMPTY)
    blended: Blended | None = None
    relevance: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    recency: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    order: np.ndarray = field(default_factory=lambda: _EMPTY)  # into the candidates, best first
    relaxed: int = 0
    explanations: list[str | None] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)
    _vectors: np.ndarray | None = None

    def vectors(self) -> np.ndarray | None:
        """The candidates' unit vectors (MMR, list diversity), looked up once."""
        if self._vectors is None and self.snapshot.vectors is not None:
            self._vectors = self.snapshot.vectors[self.positions]
        return self._vectors

    def mark(self, stage: str) -> None:
        """Record the time since the previous mark as ``stage``'s."""
        now = time.perf_counter()
        self.timings_ms[stage] = (now - self._last) * 1000.0
        self._last = now
