"""One router per resource: events, catalog, health."""
