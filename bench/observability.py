"""Cost of the recording middleware, and memory per series.

Two copies of the application run as processes, one without the recording middleware (counts,
sketches, Prometheus), and the same client loads them alternately: the ratio of requests per
second (goal >= 0.9) says what recording costs. The access log, a middleware of its own, runs in
both. Then the memory of one series after 1,000,000 samples.

    .venv/bin/python -m bench.observability [--requests 8000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
from aiohttp import web

from bench.edge_client import load
from harness.process import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "bench-service-key-0123456789"


def serve(port: int, with_recording: bool) -> None:
    """Child process: the real app on SQLite, optionally without the recorder."""
    import api
    from store import migrate
    from utils.config import Settings
    from utils.logging import configure_logging

    # As in production: JSON lines through the masking pipeline (to /dev/null here).
    configure_logging(log_format="json", stream=open(os.devnull, "w"))  # noqa: SIM115

    folder = tempfile.mkdtemp()
    url = f"sqlite+aiosqlite:///{folder}/bench.db"
    migrate.upgrade(url)
    app = api.create_app(Settings(_env_file=None, database_url=url, api_key=BENCH_KEY,
                                  rate_limit_health="100000000/minute",
                                  rate_limit_read="100000000/minute"))
    if not with_recording:
        from edge.app_keys import RECORDER

        app[RECORDER].enabled = False
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def memory_per_series(samples: int) -> int:
    from observability.series import Series

    values = np.random.default_rng(3).lognormal(-4, 1.5, samples).tolist()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    series = Series(lambda: 0.0)
    for value in values:
        series.record(200, value)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    ports = {"with": free_port(), "without": free_port()}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = {name: subprocess.Popen(  # noqa: ASYNC220 (started once, before the timing)
        [sys.executable, "-m", "bench.observability", "serve", str(port), name], env=env,
        text=True) for name, port in ports.items()}
    try:
        for name, process in processes.items():
            wait_until_ready(ports[name], process)
            await load(ports[name], 500, args.concurrency)
        # /health: the cheapest route, where the recorder's fixed cost shows most; a 404 and a
        # dashboard read (/api/v1/me with a service key) are access-logged like every request.
        for path in ("/health", "/no-such-route", "/api/v1/me"):
            rates: dict[str, list[float]] = {"with": [], "without": []}
            for _ in range(3):
                for name in ("with", "without"):
                    rates[name].append(await load(ports[name], args.requests,
                                                  args.concurrency, path, expect=None,
                                                  headers={"X-Api-Key": BENCH_KEY}))
            with_rate, without_rate = (statistics.median(rates[n]) for n in ("with", "without"))
            ratio = with_rate / without_rate
            print(f"GET {path} x {args.requests} x 3 rounds, concurrency {args.concurrency}")
            print(f"  with recording    {with_rate:8.0f} req/s")
            print(f"  without recording {without_rate:8.0f} req/s")
            print(f"  ratio {ratio:.2f} (goal >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'})")
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=15)
    size = memory_per_series(1_000_000)
    print(f"memory of one series after 1,000,000 samples: {size / 1024:.1f} KiB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3] == "with")
    else:
        asyncio.run(main())
