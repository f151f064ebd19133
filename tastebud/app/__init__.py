"""The listener's app: a progressive web app served by ``tastebud serve`` at ``/app``.

Plain modern JavaScript, no build step (docs/app.md says why): ``static/`` holds the page
(``index.html``, ``app.js``, ``app.css``), the service worker (``sw.js``), the queue and
storage code both share (``queue.js``), the web app manifest and its icons.

Layer (docs/architecture.md): static files; may import nothing of tastebud.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

APP_VERSION_MARK = "__TASTEBUD_APP_VERSION__"


def static_dir() -> Path:
    return Path(__file__).with_name("static")


@cache
def app_version() -> str:
    """A digest of every static file: it names the service worker's shell cache, so a new
    release replaces the cached shell in one step and an unchanged one keeps it."""
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(static_dir().rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(static_dir()).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
