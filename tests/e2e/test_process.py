"""The real process: start, serve, stop on SIGTERM; refuse to start when it must."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.process import BOT, base_env, free_port, start_bot, wait_until_ready
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
