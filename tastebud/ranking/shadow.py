"""The shadow model: the version under the ``[monitoring] shadow_alias`` registry alias
(default ``shadow``) ranks a sample of the requests production serves, off the request path,
and is judged against what production served (``tastebud.monitoring.shadow``: overlap@k,
rank correlation of the scores, latency difference). Users only ever get production's list.

The request path calls ``offer`` after a list is served: without a ready shadow model, or
outside the sample (``shadow_sample``), it returns at once; else it appends the request and
production's list to a bounded queue (a deque: one atomic append) and wakes the worker.
A full queue drops the offer (counted, ``tastebud_shadow_requests_total{outcome="dropped"}``):
never a wait. The worker thread (started with the service, or by the first offer) reads the
alias every ``serving.poll_seconds``, loads its version through the lifecycle's ``load_model``
(fetched, verified, smoke-tested, as the serving model is; a refused version is retried
after ``serving.retry_failed_seconds``), builds a snapshot beside the current catalog and
embeddings (``snapshot_with``, as variants do), and ranks each queued request with
``compute``: the same user, request, session items and ranking settings. Each poll it also
shares its comparisons for the fleet's view (``share``).

A precomputed list's production scores are decoded by the worker, not by the request; its
latency difference is left out (it was looked up, not ranked).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tastebud.config import Settings
from tastebud.monitoring.shadow import (
    FLEET_TTL_SECONDS,
    ShadowSummary,
    compare,
    fleet,
    publish,
    worker_id,
)
from tastebud.observability import get_logger
from tastebud.ranking.lifecycle import ModelLifecycle
from tastebud.ranking.precomputed import PrecomputedList
from tastebud.ranking.snapshot import ServingModel, Snapshot
from tastebud.ranking.types import RankedList, RankRequest, Served
from tastebud.ranking_config import RankingSettings

log = get_logger("tastebud.ranking")

# (user, request, session items, ranking settings, snapshot) -> what production's compute gives
Compute = Callable[..., tuple[Served, str | None]]


@dataclass(frozen=True, slots=True)
class Offer:
    user_id: str | None
    request: RankRequest
    session_items: tuple[str, ...]
    ranking: RankingSettings | None
    served: RankedList | PrecomputedList


class ShadowRanking:
    def __init__(self, settings: Settings, lifecycle: ModelLifecycle, compute: Compute) -> None:
        options = settings.monitoring
        self.alias = options.shadow_alias
        self.sample = options.shadow_sample
        self.capacity = options.shadow_queue
        self.poll_seconds = settings.serving.poll_seconds
        self.lifecycle = lifecycle
        self.compute = compute
        self.summary = ShadowSummary()
        self.online = lifecycle.stores.online  # where the fleet's comparisons meet
        self.worker = worker_id()
        self._shared: tuple[int, float] = (-1, -float("inf"))  # (total, monotonic) published
        self.version: str | None = None  # the shadow version ready to rank (None: none)
        self.problem: str | None = None  # why the alias's version does not rank
        self._model: ServingModel | None = None
        self._snapshot: tuple[Snapshot, Snapshot] | None = None  # (built beside, shadow's)
        self._queue: deque[Offer] = deque()
        self._random = random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- the request path -----------------------------------------------------------------

    def offer(
        self,
        user_id: str | None,
        request: RankRequest,
        session_items: Sequence[str],
        ranking: RankingSettings | None,
        served: RankedList | PrecomputedList,
    ) -> None:
        """Hand a served list to the shadow when it is sampled; never waits."""
        if self.sample <= 0.0:
            return
        if self._thread is None:
            self._start()
        if self.version is None or self._random.random() >= self.sample:
            return
        if len(self._queue) >= self.capacity:
            self.summary.count("dropped")
            return
        self._queue.append(Offer(user_id, request, tuple(session_items), ranking, served))
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- the worker -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker now (when sampling), so the shadow model loads before traffic
        needs it; ``offer`` starts it otherwise."""
        if self.sample > 0.0 and self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(target=self._run, name="tastebud-shadow", daemon=True)
                self._thread = thread
                thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        checked = -float("inf")
        while not self._stop.is_set():
            try:
                if time.monotonic() - checked >= self.poll_seconds:
                    checked = time.monotonic()
                    self.refresh()
                    self.share()
                self.drain()
            except Exception as error:  # the thread must outlive any one failure
                log.error("shadow_failed", error=f"{type(error).__name__}: {error}")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def refresh(self) -> None:
        """Follow the alias: load a new version, rebuild the snapshot beside a new catalog
        or embeddings, or stand down when the alias is gone. Tests call it to be ready."""
        try:
            version = self.lifecycle.registry.aliases().get(self.alias)
        except Exception as error:  # keep what was loaded; look again next time
            log.warning("model_alias_unreadable", error=f"{type(error).__name__}: {error}")
            return
        current = self.lifecycle.snapshot
        if version is None or version == current.model_version:
            self.version, self._model, self._snapshot = None, None, None
            self.problem = None if version is None else f"{self.alias} names production's version"
            return
        if self._model is None or self._model.version != version:
            self.version, self._snapshot = None, None
            self._model = self._load(version)
            if self._model is None:
                return
        if self._snapshot is None or self._snapshot[0] is not current:
            self._snapshot = (current, self.lifecycle.snapshot_with(self._model))
        self.version = version

    def _load(self, version: str) -> ServingModel | None:
        model, problem = self.lifecycle.load_for("shadow", version)
        if problem is not None:
            self.problem = f"{self.alias} -> {version} cannot be loaded: {problem}"[:300]
        elif model is not None:
            self.problem = None
        return model

    def drain(self) -> int:
        """Rank everything queued with the shadow; returns how many were compared."""
        done = 0
        while True:
            try:
                offer = self._queue.popleft()
            except IndexError:  # empty (another drain may have taken the last)
                break
            entry, version = self._snapshot, self.version
            if entry is None or version is None:
                self.summary.count("skipped")
                continue
            try:
                self._compare(offer, entry[1], version)
            except Exception as error:
                self.summary.count("failed")
                log.warning("shadow_rank_failed", error=f"{type(error).__name__}: {error}")
                continue
            done += 1
        return done

    def _compare(self, offer: Offer, snapshot: Snapshot, version: str) -> None:
        listed = offer.served
        production_ms = None
        if isinstance(listed, PrecomputedList):
            listed = listed.ranked(explain=False)
        else:
            production_ms = listed.timings_ms.get("total")
        started = time.perf_counter()
        shadow, _ = self.compute(
            offer.user_id,
            offer.request,
            session_items=offer.session_items,
            ranking=offer.ranking,
            snapshot=snapshot,
        )
        shadow_ms = (time.perf_counter() - started) * 1000
        self.summary.record(
            compare(
                [(item.item_id, item.score) for item in listed.items],
                [(item.item_id, item.score) for item in shadow.ranked.items],
                shadow_version=version,
                production_version=listed.model_version,
                production_ms=production_ms,
                shadow_ms=shadow_ms,
            )
        )

    def share(self) -> None:
        """Publish this worker's comparisons for the fleet's view when they changed, and
        again before they would expire (``monitoring.shadow``)."""
        total, now = self.summary.total, time.monotonic()
        if total == self._shared[0] and now - self._shared[1] < FLEET_TTL_SECONDS / 3:
            return
        try:
            publish(self.online, self.worker, self.summary)
        except Exception as error:  # the fleet's view waits; this worker's is unharmed
            log.warning("shadow_publish_failed", error=f"{type(error).__name__}: {error}")
            return
        self._shared = (total, now)

    def status(self) -> dict[str, object]:
        """What ``GET /v1/monitoring/shadow`` shows: this worker's shadow and its summary,
        and every worker's merged (``fleet``; None when the online store cannot say)."""
        try:
            merged: dict[str, object] | None = fleet(self.online)
        except Exception as error:
            log.warning("shadow_fleet_unreadable", error=f"{type(error).__name__}: {error}")
            merged = None
        return {
            "alias": self.alias,
            "sample": self.sample,
            "shadow_version": self.version,
            "production_version": self.lifecycle.snapshot.model_version,
            "problem": self.problem,
            "queued": len(self._queue),
            **self.summary.as_dict(),
            "fleet": merged,
        }
