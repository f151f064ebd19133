"""Open the gateway metadata stores beside a database's event store."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from tastebud.stores.base import EventStore, StoreError
from tastebud.stores.gateway import GatewayStores


def open_gateway_stores(url: str, events: EventStore) -> GatewayStores:
    """Embedded: ``gateway.db`` in the database folder. PostgreSQL: tables on the event
    store's connection pool (the pool stays owned by the event store)."""
    from tastebud.stores.postgres_events import PostgresEventStore

    if isinstance(events, PostgresEventStore):
        from tastebud.stores.postgres_gateway import PostgresApiKeyStore, PostgresDeadLetterStore

        return GatewayStores(
            PostgresApiKeyStore(events.database), PostgresDeadLetterStore(events.database)
        )
    parts = urlsplit(url)
    if parts.scheme != "embedded":
        raise StoreError(f"no gateway metadata store for {parts.scheme!r} databases")
    from pathlib import Path

    from tastebud.stores.embedded_gateway import open_embedded_gateway

    root = Path(unquote(parts.netloc + parts.path)).expanduser()
    keys, letters = open_embedded_gateway(root / "gateway.db")
    return GatewayStores(keys, letters)
