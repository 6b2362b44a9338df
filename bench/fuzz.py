"""The full fuzzing run (tests/e2e/test_fuzz.py runs a quick slice of the same): schemathesis
from the real process's /openapi.json (stateless in both generation modes, and stateful along
its links), Hypothesis-made webhook deliveries (valid and signed, mutated, garbage) and raw
bytes at the HTTP parser; on SQLite, then on PostgreSQL; round after round until each backend
got `--requests`. Prints the count and the result of each, then the total; exits non-zero on
any answer of 500 or more (bar the documented 503 of features that are off), any request left
without an answer, any traceback in the process's log.

    .venv/bin/python -m bench.fuzz [--requests 50000] [--scale 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness.databases import temporary_postgres
from harness.fuzzing import FuzzRun, fuzz_process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000, help="per backend")
    parser.add_argument("--scale", type=int, default=60,
                        help="examples per operation and generation mode in one round")
    parser.add_argument("--seed", type=int, default=20_141)
    args = parser.parse_args()
    runs: list[FuzzRun] = []
    last = [0.0]

    def progress(message: str) -> None:
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(message, flush=True)

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        runs.append(fuzz_process(workdir, f"sqlite+aiosqlite:///{workdir / 'bot.db'}",
                                 backend="sqlite", scale=args.scale, min_requests=args.requests,
                                 seed=args.seed, progress=progress))
        print(runs[-1].report(), flush=True)
        with temporary_postgres("fuzz") as url:
            runs.append(fuzz_process(workdir, url, backend="postgresql", scale=args.scale,
                                     min_requests=args.requests, seed=args.seed,
                                     progress=progress))
        print(runs[-1].report(), flush=True)
    total = sum(run.tally.requests for run in runs)
    errors = sum(run.tally.unexpected_5xx for run in runs)
    silent = sum(len(run.tally.no_answer) for run in runs)
    tracebacks = sum(len(run.tracebacks) for run in runs)
    drift = sum(sum(run.tally.conformance.values()) for run in runs)
    print(f"TOTAL {total} requests: answers >= 500 (unexpected): {errors}; without an answer: "
          f"{silent}; tracebacks: {tracebacks}; answers unlike the document: {drift}")
    for run in runs:
        for line in run.tally.server_errors[:10] + run.tally.no_answer[:10] + run.tracebacks[:5]:
            print(f"  [{run.backend}] {line}")
        for line, count in run.tally.conformance.most_common(10):
            print(f"  [{run.backend}] {count} x {line}")
    return 1 if errors or silent or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
