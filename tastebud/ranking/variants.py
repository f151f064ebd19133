"""The extra model versions experiment variants rank with (a variant's ``model``: a registry
alias or a version), one small cache per worker, kept off the request path.

A request asks ``snapshot_for(ref, current)`` and never waits: it gets the current snapshot
when the ref resolves to the serving version, a snapshot ranking with the variant's model
(same catalog and embeddings) when one is ready, else None, and the caller serves control
(counted). The first ask wakes a thread that resolves aliases, loads the version through the
lifecycle's ``load_model`` (fetched, verified, smoke-tested, as the serving model is) and
builds its snapshot; every ``serving.poll_seconds`` it looks again, so a moved alias or a
new catalog reaches variants too. A version that fails to load is retried after
``serving.retry_failed_seconds``. Refs nobody asked for in ``IDLE_SECONDS`` are let go.
"""

from __future__ import annotations

import threading
import time

from tastebud.observability import get_logger
from tastebud.ranking.lifecycle import ModelLifecycle
from tastebud.ranking.snapshot import ServingModel, Snapshot

log = get_logger("tastebud.ranking")
KEEP = 3  # extra versions held at once (each is a whole model in memory)
IDLE_SECONDS = 600.0


class VariantModels:
    def __init__(self, lifecycle: ModelLifecycle, *, keep: int = KEEP) -> None:
        self.lifecycle = lifecycle
        self.keep = keep
        self.poll_seconds = lifecycle.serving.poll_seconds
        self._resolved: dict[str, str] = {}  # ref (alias or version) -> version
        self._wanted: dict[str, float] = {}  # ref -> last asked (monotonic)
        # version -> (the snapshot it was built beside, the variant's snapshot)
        self._snapshots: dict[str, tuple[Snapshot, Snapshot]] = {}
        self.problems: dict[str, str] = {}  # ref -> why it does not serve
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time
        self._thread: threading.Thread | None = None

    def snapshot_for(self, ref: str, current: Snapshot) -> Snapshot | None:
        """What a variant naming ``ref`` ranks with now, or None (not ready or not loadable):
        never waits."""
        self._wanted[ref] = time.monotonic()
        version = self._resolved.get(ref)
        if version is None:
            self._kick()
            return None
        if version == current.model_version:
            return current
        entry = self._snapshots.get(version)
        if entry is None:
            self._kick()
            return None
        if entry[0] is not current:  # a new catalog or embeddings: rebuilt in the background
            self._kick()
        return entry[1]

    def _kick(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._run, name="tastebud-variants")
                    self._thread.daemon = True
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as error:  # the thread must outlive any one failure
                log.error("variant_refresh_failed", error=f"{type(error).__name__}: {error}")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def refresh(self) -> None:
        """Resolve the wanted refs, load what is missing, rebuild what is stale, let go of
        the rest. The thread's work; tests call it to be ready without waiting."""
        with self._lock:
            now = time.monotonic()
            for ref, asked in list(self._wanted.items()):
                if now - asked > IDLE_SECONDS:
                    self._wanted.pop(ref, None)
                    self._resolved.pop(ref, None)
            try:
                aliases = self.lifecycle.registry.aliases()
            except Exception as error:  # keep what was resolved; look again next time
                log.warning("model_alias_unreadable", error=f"{type(error).__name__}: {error}")
                aliases = None
            if aliases is not None:
                for ref in list(self._wanted):
                    self._resolved[ref] = aliases.get(ref, ref)
            current = self.lifecycle.snapshot
            recent = sorted(self._wanted, key=self._wanted.__getitem__, reverse=True)
            needed = [self._resolved[r] for r in recent if r in self._resolved]
            needed = [v for v in dict.fromkeys(needed) if v != current.model_version][: self.keep]
            for version in needed:
                self._prepare(version, current)
            for version in [v for v in self._snapshots if v not in needed]:
                del self._snapshots[version]

    def _prepare(self, version: str, current: Snapshot) -> None:
        entry = self._snapshots.get(version)
        if entry is not None and entry[0] is current:
            return
        model = entry[1].model if entry is not None else self._load(version)
        if model is None:
            return
        self._snapshots[version] = (current, self.lifecycle.snapshot_with(model))

    def _load(self, version: str) -> ServingModel | None:
        model, problem = self.lifecycle.load_for("variant", version)
        if problem is not None:
            self.problems[version] = problem
        elif model is not None:
            self.problems.pop(version, None)
        return model
