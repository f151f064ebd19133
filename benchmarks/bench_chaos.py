"""Dependency outages at the issue's full durations (issue 16): ``tastebud serve --workers 2``
on its own Redis (online store) and its own PostgreSQL cluster, ``--rate`` requests/s of
recommendation reads (70%) and event writes (30%), open loop, while:

* ``redis-pause``: Redis is paused (SIGSTOP) for ``--redis-seconds`` (15), then resumed;
* ``redis-kill``: Redis is killed (SIGKILL) and restarted empty ``--redis-seconds`` later;
* ``postgres-stop``: PostgreSQL is stopped (``pg_ctl stop -m fast``) for ``--postgres-seconds``
  (20), then started again;
* ``baseline``: nothing happens (for comparison).

Each scenario runs ``--before`` seconds of load, the fault, then ``--after`` seconds. During
the fault ``/readyz`` is asked once a second (its slowest answer is recorded). Targets, as in
``tests/chaos`` (which runs the same harness with CI-sized durations): recommendation p99
under 100 ms and no 5xx for reads over the whole scenario; every read degraded while Redis
is out; recovery within 5 s of the dependency's return; ``/readyz`` within 1 s; every
acknowledged event stored exactly once. Writes ``results/chaos.json``; exits 1 on a miss.

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_chaos.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the chaos harness
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api.gateway_testing import ServerProcess, free_port, server_env
from chaos.harness import Load, build_world, report, stored_once
from chaos.services import PostgresCluster, RedisServer
from machine import describe

RESULTS = Path(__file__).resolve().parent / "results" / "chaos.json"
TARGETS = {"reco_p99_ms": 100.0, "recovery_s": 5.0, "ready_s": 1.0}
SCENARIOS = ("baseline", "redis-pause", "redis-kill", "postgres-stop")


class ReadyProbe(threading.Thread):
    """``/readyz`` once a second until stopped: the slowest answer and the last verdict."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.done = threading.Event()
        self.slowest = 0.0
        self.answers: list[dict[str, Any]] = []

    def run(self) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=10)
                verdict: dict[str, Any] = {"status": response.status_code, **response.json()}
            except httpx.HTTPError as error:
                verdict = {"status": type(error).__name__}
            took = time.monotonic() - started
            self.slowest = max(self.slowest, took)
            self.answers.append({"seconds": round(took, 3), **verdict})
            self.done.wait(max(0.0, 1.0 - took))


def scenario(
    name: str, server: ServerProcess, redis: RedisServer, postgres: PostgresCluster,
    key: str, args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    fault = {"redis-pause": args.redis_seconds, "redis-kill": args.redis_seconds}.get(
        name, args.postgres_seconds if name == "postgres-stop" else 0.0
    )
    load = Load(server.port, key, args.rate, args.before + fault + args.after, seed=len(name))
    load.start()
    time.sleep(args.before)
    probe = ReadyProbe(server.url)
    fault_start = load.now()
    if name == "redis-pause":
        redis.pause()
    elif name == "redis-kill":
        redis.kill()
    elif name == "postgres-stop":
        postgres.stop()
    probe.start()
    try:
        time.sleep(fault)
    finally:
        probe.done.set()
        if name == "redis-pause":
            redis.resume()
        elif name == "redis-kill":
            redis.start()
        elif name == "postgres-stop":
            postgres.start()
    fault_end = load.now()
    probe.join()
    load.join()
    if load.error is not None:
        raise load.error
    found = report(load, fault_start, fault_end).as_dict()
    found.update(
        scenario=name,
        fault_seconds=round(fault_end - fault_start, 2),
        ready_slowest_s=round(probe.slowest, 3),
        ready_during_fault=probe.answers[len(probe.answers) // 2] if probe.answers else None,
        events=stored_once(load, postgres.url),
    )
    return found


def misses(found: dict[str, Any]) -> list[str]:
    missed = []
    if found["reco_p99_ms"] >= TARGETS["reco_p99_ms"]:
        missed.append(f"reco p99 {found['reco_p99_ms']} ms")
    if set(found["reco_statuses"]) != {"200"}:
        missed.append(f"reads answered {found['reco_statuses']}")
    if found["scenario"].startswith("redis") and found["degraded_during_fault"] < 1.0:
        missed.append(f"degraded during the fault: {found['degraded_during_fault']:.1%}")
    for field in ("last_degraded_after_return_s", "last_failed_write_after_return_s"):
        if found["scenario"] != "baseline" and (found[field] or 0.0) >= TARGETS["recovery_s"]:
            missed.append(f"{field} {found[field]}")
    if found["ready_slowest_s"] >= TARGETS["ready_s"]:
        missed.append(f"/readyz took {found['ready_slowest_s']} s")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--before", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=20.0)
    parser.add_argument("--redis-seconds", type=float, default=15.0)
    parser.add_argument("--postgres-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    machine = describe()
    print(json.dumps(machine), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as scratch:
        folder = Path(scratch)
        postgres = PostgresCluster().init().start()
        redis = RedisServer(folder / "redis").start()
        server = None
        try:
            key = build_world(folder / "home", postgres.url, redis.url)
            env = server_env(
                folder / "home",
                TASTEBUD_DATABASE_URL=postgres.url,
                TASTEBUD_ONLINE_URL=redis.url,
            )
            server = ServerProcess(env, free_port(), args.workers, folder / "server.log")
            server.start()
            Load(server.port, key, args.rate, 3.0).run()  # warm: both workers, keys cached
            for name in args.scenarios.split(","):
                found = scenario(name.strip(), server, redis, postgres, key, args)
                found["misses"] = misses(found)
                print(json.dumps(found), flush=True)
                results.append(found)
        finally:
            if server is not None:
                server.stop()
            redis.stop()
            postgres.destroy()
    document = {
        "machine": machine,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets": TARGETS,
        "scenarios": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1))
    failed = [f"{r['scenario']}: {', '.join(r['misses'])}" for r in results if r["misses"]]
    print("\n".join(failed) or "all targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
