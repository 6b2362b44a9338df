"""Cost of the recorder (counts, sketches, Prometheus), and memory per series.

Two copies of the application run as processes, one with the recorder turned off, and wrk
loads them alternately (bench/cpu.py): the ratio of server CPU per request (with / without,
goal <= 1.10) says what recording costs. The access line is written in both. Then the memory of
one series after 1,000,000 samples.

    .venv/bin/python -m bench.observability [--seconds 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from aiohttp import web

from bench.cpu import Figure, Servers, Target, bench_app, measure, print_figures

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "bench-service-key-0123456789"
PATHS = ("/health", "/no-such-route", "/api/v1/me")


def serve(with_recording: bool, port: int) -> None:
    """Child process: the real app on SQLite, optionally without the recorder."""
    from edge.app_keys import RECORDER

    app = bench_app(BENCH_KEY)
    app[RECORDER].enabled = with_recording
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


def recording_figures(*, seconds: float = 2.0, rounds: int = 3,
                      say: Callable[[str], None] = print) -> dict[str, float]:
    """CPU per request with / without the recorder, per path."""
    servers = Servers()
    try:
        servers.start_bare()
        for name in ("with", "without"):
            servers.start_command(name, [sys.executable, "-m", "bench.observability", "serve",
                                         name], PYTHONPATH=str(ROOT))
        targets = [Target(f"{name}:{path}", path, (f"X-Api-Key: {BENCH_KEY}",), server=name)
                   for path in PATHS for name in ("with", "without")]
        figures = measure(servers, targets, rounds=rounds, seconds=seconds, say=say)
    finally:
        servers.stop()
    print_figures(figures, say)
    by_label: dict[str, Figure] = {figure.label: figure for figure in figures}
    ratios = {}
    for path in PATHS:
        # Each side's median ratio to its paired bare run: drift in the load cancels out.
        ratio = by_label[f"with:{path}"].in_bare / by_label[f"without:{path}"].in_bare
        ratios[path] = ratio
        say(f"GET {path}: CPU with / without recording {ratio:.2f} "
            f"(goal <= 1.10: {'met' if ratio <= 1.1 else 'NOT met'})")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    recording_figures(seconds=args.seconds, rounds=args.rounds)
    size = memory_per_series(1_000_000)
    print(f"memory of one series after 1,000,000 samples: {size / 1024:.1f} KiB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":  # serve {with,without} PORT
        serve(sys.argv[2] == "with", int(sys.argv[3]))
    else:
        main()
