"""What the status page's history costs when nobody looks: the request path with it on ÷ off.

Two copies of the application run as processes, the same but for the per-minute history: on
(and ticking every second, sixty times as often as in production, so its cost cannot hide), or
off (its task removed). Nothing of the history runs per request: its whole cost is its ticks.

The same client loads the two alternately, round after round (which one goes first alternates
too), and each round reads the server's CPU time per request (utime + stime from
/proc/PID/stat, so other work on a shared machine does not count) and its requests per second.
The goal measure is the paired ratio off ÷ on of CPU per request (what the server could serve
with the history on, relative to off), the median over rounds and routes: >= 0.95. The ratio of
requests per second is printed beside it. `--calibrate` runs the same with the history off in
both processes: the noise floor of the measurement on this machine.

Then the history's own account: its ticks while idle (`cost` in its JSON; under load a tick's
wall time also holds the requests served while it awaits the database), and one tick's cost
with 13 and with 120 series in memory.

    .venv/bin/python -m bench.status [--requests 4000] [--concurrency 32] [--rounds 8]
                                     [--calibrate]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.cpu import bench_app, client_load
from harness.process import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "bench-service-key-0123456789"
TICK_SECONDS = 1.0


def serve(port: int, history_on: bool) -> None:
    """Child process: the real app on SQLite, its history ticking every second or removed."""
    from edge.app_keys import HISTORY

    app = bench_app(BENCH_KEY)
    if history_on:
        app[HISTORY].interval = TICK_SECONDS
    else:
        kept = [context for context in app.cleanup_ctx
                if not getattr(context, "is_history", False)]
        assert len(kept) == len(app.cleanup_ctx) - 1, "the history context was not found"
        app.cleanup_ctx[:] = kept
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def load(port: int, count: int, concurrency: int, path: str,
               headers: dict[str, str]) -> float:
    """Requests per second of GET `path` from `concurrency` concurrent clients."""
    seconds = await client_load(f"http://127.0.0.1:{port}{path}", count=count,
                                connections=concurrency, headers=headers)
    return count / seconds


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def history_cost(port: int) -> tuple[int, float, int]:
    """Ticks, seconds spent in them, and points held, as the history reports them."""
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{port}/api/observability/history?minutes=1",
            headers={"X-Api-Key": BENCH_KEY}) as response:
        body: dict[str, Any] = await response.json()
        return body["cost"]["ticks"], body["cost"]["seconds"], len(body["points"])


async def tick_cost(series: int, ticks: int = 200) -> float:
    """Microseconds per tick of a history fed by an observatory holding `series` routes."""
    from observability.history import History
    from observability.series import Observatory

    clock = [10_000.0]
    observatory = Observatory(lambda: clock[0])
    since: list[float | None] = [None]

    async def source() -> dict[str, Any]:
        since[0], window = observatory.completed(since[0])
        return {"t": clock[0], **window, "outbox": {"pending": 0, "sending": 0, "dead": 0}}

    history = History(source)
    elapsed = 0.0
    for _ in range(ticks):
        for index in range(series):
            for sample in range(20):
                observatory.record(f"GET /route-{index}/{{id}}", None, 200, 0.001 * sample)
        clock[0] += 60
        started = time.perf_counter()
        await history.tick()
        elapsed += time.perf_counter() - started
    return elapsed / ticks * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calibrate", action="store_true",
                        help="the history off in both processes (the noise floor)")
    args = parser.parse_args()
    ports = {"on": free_port(), "off": free_port()}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    modes = {"on": "off" if args.calibrate else "on", "off": "off"}
    processes = {name: subprocess.Popen(  # noqa: ASYNC220 (started once, before the timing)
        [sys.executable, "-m", "bench.status", "serve", str(port), modes[name]], env=env,
        text=True) for name, port in ports.items()}
    headers = {"X-Api-Key": BENCH_KEY}
    cpu_ratios: list[float] = []
    wall_ratios: list[float] = []
    try:
        for name, process in processes.items():
            wait_until_ready(ports[name], process)
            await load(ports[name], 500, args.concurrency, "/health", headers)
        if not args.calibrate:
            await asyncio.sleep(6)  # a few ticks with nobody looking and no load
            ticks, spent, _ = await history_cost(ports["on"])
            print(f"idle: {ticks} ticks, {spent / max(ticks, 1) * 1000:.2f} ms each "
                  f"(a {spent / max(ticks, 1) / TICK_SECONDS * 100:.3f} % share at one a "
                  f"second, {spent / max(ticks, 1) / 60 * 100:.4f} % at one a minute)")
        for path in ("/health", "/api/v1/me", "/no-such-route"):
            paired_cpu, paired_wall = [], []
            for round_number in range(args.rounds):
                rate, cpu = {}, {}
                order = ("on", "off") if round_number % 2 == 0 else ("off", "on")
                for name in order:
                    pid = processes[name].pid
                    before = cpu_seconds(pid)
                    rate[name] = await load(ports[name], args.requests, args.concurrency,
                                            path, headers)
                    cpu[name] = (cpu_seconds(pid) - before) / args.requests
                paired_cpu.append(cpu["off"] / cpu["on"])
                paired_wall.append(rate["on"] / rate["off"])
            cpu_ratios.append(statistics.median(paired_cpu))
            wall_ratios.append(statistics.median(paired_wall))
            print(f"GET {path} x {args.requests} x {args.rounds} rounds, concurrency "
                  f"{args.concurrency}: on/off {cpu_ratios[-1]:.3f} by CPU per request, "
                  f"{wall_ratios[-1]:.3f} by requests per second")
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=15)
    label = "calibration (off / off)" if args.calibrate else \
        f"history on (a point every {TICK_SECONDS:.0f} s) / off"
    ratio = statistics.median(cpu_ratios)
    print(f"recording middleware's cost, {label}: {ratio:.3f} by CPU per request, "
          f"{statistics.median(wall_ratios):.3f} by requests per second "
          f"(goal >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})")
    for series in (13, 120):
        micros = await tick_cost(series)
        print(f"one tick with {series} series: {micros:.0f} us "
              f"({micros / 60e6 * 100:.4f} % of a minute)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3] == "on")
    else:
        asyncio.run(main())
