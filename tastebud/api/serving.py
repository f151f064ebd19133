"""What a worker serves lists with, opened in the app's lifespan and closed in reverse: the
exposure log, the recommendation service (its model loaded before the first request) and
the experiment watcher that keeps the service's variants current."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anyio
from fastapi import FastAPI

from tastebud.api.routes import experiments as experiment_routes
from tastebud.config import Settings
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.experiments.watch import ExperimentWatcher
from tastebud.features.serving import FeatureService
from tastebud.ranking.recommender import RecommendationService
from tastebud.stores import Stores


@dataclass
class Serving:
    """Whatever has opened so far (``close`` closes only that, so a failed start cleans up)."""

    recommendations: RecommendationService | None = None
    exposures: ExposureLog | None = None
    watcher: ExperimentWatcher | None = None

    async def open(
        self,
        app: FastAPI,
        settings: Settings,
        stores: Stores,
        features: Callable[[], FeatureService | None],
    ) -> RecommendationService:
        if settings.experiments.exposures:
            self.exposures = open_exposure_log(settings, stores.database)
        service = self.recommendations = RecommendationService(
            settings, stores, features=features, exposures=self.exposures
        )
        # Loads the serving model before the first request (off the event loop).
        await anyio.to_thread.run_sync(service.start)
        if settings.experiments.enabled:  # the definitions, reread off the request path
            self.watcher = ExperimentWatcher(settings, experiment_routes.experiment_store(app))
            await anyio.to_thread.run_sync(self.watcher.start)
            service.experiments.use(self.watcher)
        return service

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.recommendations is not None:
            self.recommendations.stop()
        if self.exposures is not None:  # after the last request: what is queued is written
            await anyio.to_thread.run_sync(self.exposures.close)
