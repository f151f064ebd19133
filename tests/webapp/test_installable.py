"""A Lighthouse-style installability check: the manifest's fields and icons, a service
worker controlling the page and answering the start URL offline, a secure context
(localhost over HTTP counts), and Chromium's own verdict (``Page.getInstallabilityErrors``)."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from PIL import Image

from webapp.harness import AppWorld, sign_in


def test_the_app_is_installable(world: AppWorld, browser: Any) -> None:
    page = sign_in(browser, world)
    href = page.get_attribute("link[rel=manifest]", "href")
    assert href is not None
    manifest_url = urljoin(page.url, href)
    response = httpx.get(manifest_url)
    assert response.status_code == 200
    manifest = response.json()
    assert manifest["name"] and manifest["short_name"]
    assert manifest["display"] in ("standalone", "fullscreen", "minimal-ui")
    start = urljoin(manifest_url, manifest["start_url"])
    scope = urljoin(manifest_url, manifest["scope"])
    assert start.startswith(scope) and urlsplit(start).netloc == urlsplit(world.url).netloc
    assert manifest["theme_color"] and manifest["background_color"]
    sizes: dict[tuple[str, str], str] = {}
    for icon in manifest["icons"]:
        fetched = httpx.get(urljoin(manifest_url, icon["src"]))
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
        width, height = Image.open(io.BytesIO(fetched.content)).size
        assert f"{width}x{height}" == icon["sizes"], icon
        sizes[(icon["sizes"], icon.get("purpose", "any"))] = icon["src"]
    assert ("192x192", "any") in sizes and ("512x512", "any") in sizes
    assert ("512x512", "maskable") in sizes
    assert page.get_attribute("meta[name=theme-color]", "content")

    worker = page.evaluate(
        """() => ({
          secure: window.isSecureContext,
          script: (navigator.serviceWorker.controller || {}).scriptURL,
          state: (navigator.serviceWorker.controller || {}).state,
        })"""
    )
    assert worker["secure"]
    assert urlsplit(world.url).hostname in ("localhost", "127.0.0.1") or world.url.startswith(
        "https:"
    )
    assert worker["script"] == f"{world.url}/app/sw.js" and worker["state"] == "activated"

    # The start URL answers offline, from the worker.
    browser.set_offline(True)
    status = page.evaluate(f"fetch({start!r}).then(r => r.status)")
    assert status == 200
    browser.set_offline(False)

    cdp = browser.new_cdp_session(page)
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == [], errors
    parsed = cdp.send("Page.getAppManifest")
    assert parsed["errors"] == [], parsed["errors"]
    cdp.detach()
