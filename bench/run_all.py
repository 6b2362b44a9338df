"""Every benchmark in one command: one table of figures and ratios, each measured side by side
with its baseline in the same run, printed and written to bench/RESULTS.md with the machine and
the date.

    .venv/bin/python -m bench.run_all [--quick] [--no-write]

Needs PostgreSQL (127.0.0.1:5432) for the webhook figures and Redis (127.0.0.1:6379) for the
Redis ones; wrk is installed from the system's packages when missing (see bench/cpu.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import edge, observability, startup, webhooks
from bench.cpu import ensure_wrk

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass
class Row:
    benchmark: str
    figure: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    wrk = ensure_wrk()
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split(
        "\n")[0].strip() if wrk else "wrk missing (Python client, client-bound)"
    return [f"{cpu}, {os.cpu_count()} cores{memory}", f"{platform.platform()}",
            f"Python {platform.python_version()}, {wrk_version}"]


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def edge_rows(seconds: float, rounds: int, say: Callable[[str], None]) -> list[Row]:
    figures = edge.edge_figures(seconds=seconds, rounds=rounds, say=say)
    bare = figures[0]
    rows = [Row("edge: bare aiohttp GET /health (baseline)", f"{bare.cpu_us:.0f} us CPU/req",
                "", "1.00", "", None)]
    for figure in figures[1:]:
        goal = edge.GOALS.get(figure.label)
        if goal is not None and goal[0] == "of_bare":
            ratio, text, met = f"{figure.of_bare:.3f} bare/ours", f">= {goal[1]:.2f}", \
                figure.of_bare >= goal[1]
        elif goal is not None:
            ratio, text, met = f"{figure.in_bare:.3f} bare", f"<= {goal[1]} bare", \
                figure.in_bare <= goal[1]
        else:
            ratio, text, met = f"{figure.in_bare:.2f} bare", "", None
        rows.append(Row(f"edge: {figure.label}", f"{figure.cpu_us:.0f} us CPU/req, "
                        f"{figure.rate:,.0f} req/s", f"{bare.cpu_us:.0f} us", ratio, text, met))
    decisions = asyncio.run(edge.rate_limit_figures(say))
    if "redis" in decisions:
        rows.append(Row("rate limiter: Redis decisions/s, 32 concurrent clients",
                        f"{decisions['redis']:,.0f}/s", "", "", ">= 10,000/s",
                        decisions["redis"] >= 10_000))
    rows.append(Row("rate limiter: memory decisions/s, 32 concurrent clients",
                    f"{decisions['memory']:,.0f}/s", "", "", "", None))
    return rows


def recording_rows(seconds: float, rounds: int, say: Callable[[str], None]) -> list[Row]:
    ratios = observability.recording_figures(seconds=seconds, rounds=rounds, say=say)
    return [Row(f"recorder: GET {path}, CPU with / without recording", "", "without",
                f"{ratio:.2f}", "<= 1.10", ratio <= 1.1) for path, ratio in ratios.items()]


def webhook_rows(seconds: float, steady: float) -> list[Row]:
    found = asyncio.run(webhooks.webhook_figures(concurrency=16, steady_seconds=steady,
                                                 seconds=seconds))
    return [
        Row("webhooks: signed deliveries/s to PostgreSQL, concurrency 16",
            f"{found['webhook_rate']:,.0f}/s ({found['cpu_us']:.0f} us server CPU each)",
            f"{found['insert_rate']:,.0f} plain asyncpg INSERTs/s",
            f"{found['ratio']:.2f}", ">= 0.50", found["ratio"] >= 0.5),
        Row("webhooks: p99 at a steady 200 deliveries/s", f"{found['steady_p99_ms']:.1f} ms",
            "", "", "<= 20 ms", found["steady_p99_ms"] <= 20),
    ]


def startup_rows(runs: int) -> list[Row]:
    found = startup.startup_figures(runs)
    return [Row("start-up: process start to /readyz 200, new SQLite file",
                f"{found['fresh'] * 1000:.0f} ms", f"{found['bare'] * 1000:.0f} ms bare aiohttp",
                f"{found['fresh'] / found['bare']:.2f}", "<= 2000 ms", found["fresh"] <= 2)]


def table(rows: list[Row]) -> list[str]:
    lines = ["| benchmark | figure | baseline (same run) | ratio | goal | met |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.benchmark} | {row.figure} | {row.baseline} | {row.ratio} | "
                     f"{row.goal} | {met} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    seconds, rounds = (2.0, 3) if args.quick else (3.0, 3)
    say: Callable[[str], None] = print
    started = time.perf_counter()
    load_before = load_average()
    rows = edge_rows(seconds, rounds, say)
    rows += recording_rows(seconds, rounds, say)
    rows += webhook_rows(seconds, 3.0 if args.quick else 5.0)
    rows += startup_rows(3 if args.quick else 7)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench.run_all{' --quick' if args.quick else ''}` on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, in "
        f"{time.perf_counter() - started:.0f} s.",
        "",
        *[f"- {line}" for line in machine()],
        f"- load average before / after: {load_before} / {load_average()} (other work on "
        "the machine slows both sides of each ratio alike; absolute figures move with it)",
        "",
        "Edge and recorder figures are the server's own CPU time per request (user + system, "
        "from /proc/PID/stat) under `wrk -t1 -c16`, runs of "
        f"{seconds:.0f} s; in each of {rounds} rounds every request is measured right after a "
        'bare aiohttp app (one route answering {"status": "ok"}), and a ratio is the median of '
        'those pairs. "in bare" is CPU per request in bare requests (lower is better); refusals '
        "include their access line (JSON, INFO).",
        "",
        *table(rows),
        "",
    ]
    print("\n".join(lines))
    if not args.no_write:
        RESULTS.write_text("\n".join(lines))
        print(f"written to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
