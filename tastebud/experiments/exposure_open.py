"""Opening the exposure log for a database URL: apart from ``exposure_log`` (the interface
the backends build on) so that the interface never imports its backends."""

from __future__ import annotations

from urllib.parse import urlsplit

from tastebud.config import Settings
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.stores import POSTGRES_SCHEMES, Database, local_path


def open_exposure_log(settings: Settings, database: Database) -> ExposureLog:
    """The exposure log beside ``database``'s other stores: Parquet files under an embedded
    database's folder (``exposures/``), a table on a PostgreSQL database's pool."""
    options = settings.experiments
    tuning = {"flush_seconds": options.exposure_flush_seconds, "batch": options.exposure_batch}
    if urlsplit(database.url).scheme in POSTGRES_SCHEMES:
        # lazy: psycopg loads for a PostgreSQL URL only
        from tastebud.experiments.exposure_postgres import PostgresExposureLog

        pool = database.events.database  # type: ignore[attr-defined]
        return PostgresExposureLog(pool, **tuning)
    # lazy: Parquet writing loads for an embedded URL only
    from tastebud.experiments.exposure_parquet import ParquetExposureLog

    return ParquetExposureLog(local_path(database.url) / "exposures", **tuning)
