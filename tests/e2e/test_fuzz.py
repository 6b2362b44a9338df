"""A quick slice of the fuzzing (bench/fuzz.py runs the full one): schemathesis from the real
process's /openapi.json (stateless, both modes, and stateful), Hypothesis-made webhook
deliveries (valid, mutated, garbage) and raw bytes, on SQLite and PostgreSQL. No answer of 500
or more, no traceback in the log, no answer unlike the document."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.databases import temporary_postgres
from harness.fuzzing import fuzz_process
from tests.conftest import service_missing

pytestmark = pytest.mark.e2e

SCALE = int(os.environ.get("FUZZ_SCALE", "4"))  # examples per operation and mode


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    try:
        with temporary_postgres("fuzz") as url:
            yield url
    except OSError as exc:
        service_missing("PostgreSQL", exc)


def test_fuzzing_finds_no_server_error(tmp_path: Path, database_url: str) -> None:
    backend = database_url.split("+", 1)[0]
    run = fuzz_process(tmp_path, database_url, backend=backend, scale=SCALE, seed=14)
    print(run.report())  # the count and the result, in the test output (-s) and on failure
    tally = run.tally
    assert tally.requests >= 500, run.report()
    assert tally.unexpected_5xx == 0, tally.server_errors
    assert not tally.no_answer, tally.no_answer
    assert not run.tracebacks, run.tracebacks
    assert not tally.conformance, tally.conformance.most_common(10)
    assert tally.by_source["webhook-valid"] > 0
    assert tally.statuses[200] > 0
