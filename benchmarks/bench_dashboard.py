"""The dashboard's explorer: how long one user's page takes to render, on the quickstart
world (2,000 users, 3,000 items, 30 days; issue 20's target: p95 under 1 s).

Two measures against a real server (``tastebud serve`` in its own process):

- **script**: Streamlit's AppTest runs the explorer page for a user, as the dashboard's
  server does on each interaction: the user list, their history, their list ranked with
  the controls' overrides, similar items, the popular items of the cold-start view, and
  the page's elements built. Once per user (a new user each time), then once per user with
  the diversity slider moved (a rerank with overrides: nothing precomputed helps).
- **browser**: headless chromium (Debian's) on ``tastebud dashboard``: a user id typed into
  the explorer, timed until the page shows that user's list and Streamlit is idle again:
  what a person waits for, websocket and drawing included.

Usage: ``python benchmarks/bench_dashboard.py [--home DIR] [--users 40]``; without
``--home`` a quickstart world is built in a temporary folder first (about two minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from machine import describe
from serve_process import ROOT, ServeProcess, free_port, server_env

CHROMIUM = "/usr/bin/chromium"


def _quantiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _script(url: str, key: str) -> None:
    """The page run by AppTest (its source is copied into a script: imports inside)."""
    from tastebud.dashboard.source import HttpSource
    from tastebud.dashboard.views import explorer

    explorer.render(HttpSource(url, key))


def script_runs(url: str, key: str, users: list[str]) -> dict[str, Any]:
    from streamlit.testing.v1 import AppTest

    plain, moved = [], []
    for n, user in enumerate(users):
        test = AppTest.from_function(_script, args=(url, key), default_timeout=60)
        test.query_params["user"] = user
        started = time.perf_counter()
        test.run()
        elapsed = time.perf_counter() - started
        assert not test.exception and len(test.table) == 1, (user, test.exception)
        assert f"user {user} " in test.caption[0].value  # ?user= opened this user
        test.slider(key="ctl-mmr.diversity").set_value(0.3 + 0.6 * ((n % 7) + 1) / 7)
        started = time.perf_counter()
        test.run()
        moved_elapsed = time.perf_counter() - started
        assert not test.exception and len(test.table) == 1
        if n >= 3:  # the first runs warm the server's caches and Streamlit's imports
            plain.append(elapsed)
            moved.append(moved_elapsed)
    return {"new_user": _quantiles(plain), "diversity_moved": _quantiles(moved)}


def browser_runs(url: str, key: str, users: list[str]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "TASTEBUD_DASHBOARD_URL": url, "TASTEBUD_DASHBOARD_KEY": key}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "tastebud/dashboard/app.py")]
    command += ["--server.headless", "true", "--server.port", str(port)]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    timings = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            if time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not start")
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("[data-testid=stTable] tbody tr", timeout=60_000)
            box = page.get_by_label("…or type a user id")
            for n, user in enumerate(users):
                started = time.perf_counter()
                box.fill(user)
                box.press("Enter")
                _wait_for_user(page, user)
                if n >= 3:
                    timings.append(time.perf_counter() - started)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"type_a_user": _quantiles(timings)}


def _wait_for_user(page: Any, user: str) -> None:
    """Until the page's heading for the list names ``user`` and Streamlit is idle."""
    page.wait_for_function(
        """user => {
          const status = document.querySelector('[data-testid=stStatusWidget]');
          const idle = !status || !status.innerText.includes('Running');
          const caption = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]
            .map(e => e.innerText).join(' ');
          return idle && caption.includes('user ' + user + ' ');
        }""",
        arg=user,
        timeout=60_000,
    )


def _world(home: Path | None) -> Path:
    if home is not None:
        return home
    home = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    env = server_env(TASTEBUD_HOME=str(home))
    command = [sys.executable, "-m", "tastebud", "quickstart", "--no-serve"]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="A quickstart home to reuse.")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/dashboard.json")
    args = parser.parse_args()
    home = _world(args.home)
    env = server_env(TASTEBUD_HOME=str(home))
    key = subprocess.run(
        [sys.executable, "-m", "tastebud", "keys", "create", "--scope", "read"],
        env=env, check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    with ServeProcess(env, 1, home / "bench-serve.log") as server:
        listing = httpx.get(
            f"{server.url}/v1/users?limit=500", headers={"X-API-Key": key}, timeout=30
        ).json()
        users = listing["users"][:: max(1, len(listing["users"]) // (args.users + 3))]
        users = users[: args.users + 3]
        result = {
            "machine": describe(),
            "world": {"home": str(home), "users": listing["total"]},
            "script": script_runs(server.url, key, users),
            "browser": browser_runs(server.url, key, users),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
