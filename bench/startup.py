"""Time from process start to `/readyz` 200 on SQLite (goal: under 2 s).

Printed beside a bare aiohttp process that answers the same route, measured alternately in the
same run, so the ratio says what the bot's own startup (settings, logging, migration, database
ping) costs on this machine whatever its load.

    .venv/bin/python -m bench.startup [--runs 7]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.process import base_env, free_port, start_bot, wait_until_ready

BARE_APP = """
import sys
from aiohttp import web
async def ready(request): return web.json_response({"status": "ready"})
app = web.Application(); app.router.add_get("/readyz", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def time_bot(fresh_database: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if not fresh_database:  # migrate once so the timed start finds the schema at head
            subprocess.run([sys.executable, str(Path(__file__).parent.parent / "bot.py"),
                            "migrate", "upgrade"], cwd=workdir, env=base_env(workdir, 0),
                           check=True, capture_output=True)
        port = free_port()
        process = start_bot(workdir, base_env(workdir, port))
        try:
            return wait_until_ready(port, process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=15)


def time_bare() -> float:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        return wait_until_ready(port, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)


def startup_figures(runs: int = 7) -> dict[str, float]:
    """Median seconds to /readyz 200: new SQLite file, schema at head, bare aiohttp."""
    fresh, existing, bare = [], [], []
    for _ in range(runs):  # interleaved, so load on the machine hits all three alike
        fresh.append(time_bot(fresh_database=True))
        existing.append(time_bot(fresh_database=False))
        bare.append(time_bare())
    bare_median = statistics.median(bare)
    print(f"runs: {runs}")
    for label, samples in (("bot, new SQLite file", fresh), ("bot, schema at head", existing),
                           ("bare aiohttp app", bare)):
        median = statistics.median(samples)
        print(f"{label:22s} median {median * 1000:7.0f} ms  max {max(samples) * 1000:7.0f} ms"
              f"  ratio to bare {median / bare_median:5.2f}")
    goal = statistics.median(fresh)
    print(f"goal: start to /readyz 200 under 2000 ms on SQLite -> "
          f"{'met' if goal < 2 else 'NOT met'} ({goal * 1000:.0f} ms)")
    return {"fresh": goal, "existing": statistics.median(existing), "bare": bare_median}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    startup_figures(parser.parse_args().runs)


if __name__ == "__main__":
    main()
