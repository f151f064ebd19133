"""``GET /``: a small page that points a person at what the server offers (the dashboard
when ``[dashboard] url`` names one, the API docs, the listener's app), instead of a 404."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tastebud</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
li{{margin:.4rem 0}}</style></head>
<body><h1>tastebud</h1><p>A hybrid recommendation engine. From here:</p><ul>
{links}</ul></body></html>
"""


@router.get("/")
async def home(request: Request) -> HTMLResponse:
    settings = request.app.state.tastebud.settings
    links = []
    if settings.dashboard.url:
        url = escape(settings.dashboard.url, quote=True)
        links.append(
            f'<li><a id="dashboard" href="{url}">Dashboard</a>: recommendations, '
            "operations, models, business impact</li>"
        )
    links.append(
        '<li><a id="docs" href="/docs">API docs</a> (OpenAPI: '
        '<a href="/openapi.json">/openapi.json</a>)</li>'
    )
    if settings.app.enabled:
        links.append('<li><a href="/app/">The listener&rsquo;s app</a></li>')
    return HTMLResponse(PAGE.format(links="\n".join(links)))
