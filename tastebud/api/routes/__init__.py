"""One router per resource: events, catalog, health, recommendations, trending, features,
push subscriptions and the /app mount. Routers import the domain packages below them; no
domain package imports a router."""
