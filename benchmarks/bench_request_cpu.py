"""Server CPU per request: ``/healthz`` against an on-demand ranked list, one keep-alive
client sending requests one after another to a one-worker ``tastebud serve`` over the
``bench_serving.py`` world (100k users x 50k items x 64 factors), precomputed lists off.

The CPU time of the server's process tree is read before and after each pass (psutil), so
the number is the server's own work per request, which a loaded machine moves far less than
a throughput. The ratio of the two costs bounds what a throughput ratio can reach.

Run:  .venv/bin/python benchmarks/bench_request_cpu.py WORLD_HOME [REQUESTS] [KEY=VALUE ...]
(``KEY=VALUE``: extra ``TASTEBUD_*`` settings for the server.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import Server, user_ids
from machine import process_tree_cpu


def main() -> None:
    home, n = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    extra = {"TASTEBUD_SERVING__PRECOMPUTED": "false"}
    for pair in sys.argv[3:]:
        key, value = pair.split("=", 1)
        extra[key] = value
    with Server(home, 1, 500, extra) as server:
        users = user_ids(n + 200, 7)
        headers = {"X-API-Key": server.key}
        with httpx.Client(base_url=server.url, headers=headers) as client:
            for user in users[:200]:  # warm-up: page faults, first calls
                client.get(f"/v1/users/{user}/recommendations?k=20&explain=true")
                client.get("/healthz")
            ranked = [f"/v1/users/{u}/recommendations?k=20&explain=true" for u in users[200:]]
            for label, paths in (("healthz", ["/healthz"] * n), ("on-demand", ranked)):
                cpu, wall = process_tree_cpu(server.process.pid), time.perf_counter()
                for path in paths:
                    response = client.get(path)
                    assert response.status_code == 200, (response.status_code, response.text)
                cpu = process_tree_cpu(server.process.pid) - cpu
                wall = time.perf_counter() - wall
                print(
                    f"{label}: server CPU {1000 * cpu / n:.3f} ms/request, "
                    f"wall {1000 * wall / n:.3f} ms/request",
                    flush=True,
                )


if __name__ == "__main__":
    main()
