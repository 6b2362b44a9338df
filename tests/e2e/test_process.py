"""The real process: start, serve, stop on SIGTERM; refuse to start when it must."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from harness.databases import ADMIN_DSN
from harness.process import BOT, base_env, free_port, start_bot, wait_until_ready
from tests.conftest import service_missing
from utils.config import WEBHOOK_SECRET_VARIABLES, WEBHOOK_SENDERS

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_starts_serves_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    port = free_port()
    process = start_bot(tmp_path, base_env(tmp_path, port))
    try:
        wait_until_ready(port, process)
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert any("DISCORD_TOKEN is not set" in event for event in events)
    assert any("NO AUTHENTICATION" in event for event in events)
    assert events[-1] == "stopped"
    assert (tmp_path / "bot.db").exists()


def test_default_database_lives_in_data_folder(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path, port)
    del env["DATABASE_URL"]
    process = start_bot(tmp_path, env)
    try:
        wait_until_ready(port, process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        process.kill()
    assert (tmp_path / "data" / "bot.db").exists()


def test_production_with_missing_secrets_refuses_to_start(tmp_path: Path) -> None:
    env = base_env(tmp_path, free_port(), APP_ENV="production", API_KEY="k" * 40,
                   WEBHOOKS_ENABLED=",".join(WEBHOOK_SENDERS))
    process = start_bot(tmp_path, env)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0
    for name in WEBHOOK_SECRET_VARIABLES:
        assert f"{name}: missing" in stderr
    assert "k" * 40 not in stderr
    assert not (tmp_path / "bot.db").exists(), "nothing may happen before the config is valid"


def test_check_config_lists_problems_and_exits_non_zero(tmp_path: Path) -> None:
    env = base_env(tmp_path, 0, STRICT_SECURITY_MODE="1", RATE_LIMIT_READ="often")
    result = subprocess.run([sys.executable, BOT, "check-config"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "RATE_LIMIT_READ" in result.stderr


def test_check_config_passes_on_valid_settings(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, BOT, "check-config"], cwd=tmp_path,
                            env=base_env(tmp_path, 0), capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_port_in_use_exits_non_zero(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_bot(tmp_path, base_env(tmp_path, port))
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "the API cannot listen" in stderr


def test_bot_that_cannot_log_in_exits_non_zero(tmp_path: Path) -> None:
    dead = free_port()
    env = base_env(tmp_path, free_port(), DISCORD_TOKEN="not.a.real-token",
                   DISCORD_API_BASE=f"http://127.0.0.1:{dead}/api/v10")
    process = start_bot(tmp_path, env)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "the Discord bot stopped" in stderr  # unreachable: not the token's fault
    assert f"127.0.0.1:{dead}" in stderr  # where it could not connect
    assert "not.a.real-token" not in stderr


# --- A database that cannot be reached: one line naming why, never a traceback -------------

DATABASE_PASSWORD = "pw-Never-Printed-7d1f"


def postgres_url(*, host: str = "", port: int | None = None, database: str = "",
                 role: str = "") -> str:
    """A PostgreSQL URL on the test server (TEST_POSTGRES_DSN), with pieces replaced; it always
    carries a password (trust authentication ignores it) that must never be printed."""
    admin = make_url(ADMIN_DSN)
    return URL.create(
        "postgresql+asyncpg", username=role or admin.username, password=DATABASE_PASSWORD,
        host=host or admin.host, port=port or admin.port or 5432,
        database=database or admin.database).render_as_string(hide_password=False)


def postgres_answers() -> bool:
    admin = make_url(ADMIN_DSN)
    try:
        socket.create_connection((admin.host or "127.0.0.1", admin.port or 5432), 2).close()
    except OSError:
        return False
    return True


def unreachable_cases() -> list[Any]:
    closed = free_port()
    return [
        pytest.param(postgres_url(host="127.0.0.1", port=closed),
                     f"127.0.0.1:{closed} refused the connection", id="closed-port"),
        pytest.param(postgres_url(host="no-such-host.invalid"),
                     'the database host "no-such-host.invalid" does not resolve', id="dns"),
        pytest.param(postgres_url(database="no_such_database_e2e"),
                     'database "no_such_database_e2e" does not exist', id="missing-database",
                     marks=pytest.mark.postgres),
        pytest.param(postgres_url(role="no_such_role_e2e"),
                     'refused role "no_such_role_e2e"', id="unknown-role",
                     marks=pytest.mark.postgres),
    ]


def needs_postgres(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") and not postgres_answers():
        service_missing("PostgreSQL", ConnectionRefusedError(ADMIN_DSN))


@pytest.mark.parametrize(("url", "cause"), unreachable_cases())
def test_run_with_an_unreachable_database_logs_one_line_naming_why(
        tmp_path: Path, url: str, cause: str, request: pytest.FixtureRequest) -> None:
    needs_postgres(request)
    process = start_bot(tmp_path, base_env(tmp_path, free_port(), DATABASE_URL=url))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert DATABASE_PASSWORD not in stderr
    errors = [json.loads(line) for line in stderr.splitlines()
              if line.startswith("{") and json.loads(line)["level"] == "error"]
    assert len(errors) == 1, stderr
    assert errors[0]["event"] == "cannot reach the database: not starting"
    assert cause in errors[0]["cause"]
    assert len(stderr.splitlines()) <= 3, stderr  # "migrating", the error, nothing more


@pytest.mark.parametrize("command", [["migrate", "current"], ["migrate", "upgrade"],
                                     ["apikey", "list"]])
@pytest.mark.parametrize(("url", "cause"), unreachable_cases())
def test_cli_with_an_unreachable_database_prints_one_line_naming_why(
        tmp_path: Path, url: str, cause: str, command: list[str],
        request: pytest.FixtureRequest) -> None:
    needs_postgres(request)
    result = subprocess.run([sys.executable, BOT, *command], cwd=tmp_path,
                            env=base_env(tmp_path, 0, DATABASE_URL=url), capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert DATABASE_PASSWORD not in result.stderr
    (line,) = result.stderr.splitlines()  # one line, so no traceback
    assert line.startswith("cannot reach the database: ")
    assert cause in line
