"""`gsm:` references in the real process: production refuses to start on one it cannot read,
naming it; check-config names every unreadable one; a readable one is used, never the literal."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from harness.google_standins import GoogleStandIn
from harness.process import BOT, base_env, free_port, start_bot, wait_until_ready


def google_env(google: GoogleStandIn, workdir: Path, port: int, **extra: str) -> dict[str, str]:
    return base_env(workdir, port, GOOGLE_PROJECT_ID=google.key.project_id,
                    GOOGLE_CREDENTIALS_JSON=google.key_json(),
                    SECRET_MANAGER_API_ENDPOINT=google.url, **extra)


async def refused_start(google: GoogleStandIn, workdir: Path, **extra: str) -> str:
    """Start `python bot.py`; it must stop before listening, with the configuration exit code
    and no traceback. Its stderr."""
    process = start_bot(workdir, google_env(google, workdir, free_port(), **extra))
    _, stderr = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 2
    assert "Traceback" not in stderr
    assert "api listening" not in stderr
    return stderr


async def test_production_refuses_to_start_on_an_unreadable_reference(
        google: GoogleStandIn, tmp_path: Path) -> None:
    stderr = await refused_start(google, tmp_path, APP_ENV="production",
                                 API_KEY="gsm:operator-key")
    assert "API_KEY: secret 'operator-key' could not be read from Secret Manager" in stderr
    assert google.key_json()[40:80] not in stderr


async def test_an_unreadable_redis_url_stops_the_start_with_its_name(
        google: GoogleStandIn, tmp_path: Path) -> None:
    # Without Redis there is nothing to build the shared rate limiter on, even in development.
    stderr = await refused_start(google, tmp_path, REDIS_URL="gsm:redis-url",
                                 RATE_LIMIT_BACKEND="redis")
    assert "REDIS_URL: secret 'redis-url' could not be read from Secret Manager" in stderr


async def test_check_config_names_each_unreadable_reference(
        google: GoogleStandIn, tmp_path: Path) -> None:
    google.set_secret("readable", "a-value-that-exists-0123456789abcdef")
    env = google_env(google, tmp_path, 0, API_KEY="gsm:readable", LLM_API_KEY="gsm:absent",
                     FOUNDER_WEBHOOK_SECRET="gsm:also-absent@3")
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, BOT, "check-config"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "LLM_API_KEY: secret 'absent'" in result.stderr
    assert "FOUNDER_WEBHOOK_SECRET: secret 'also-absent'" in result.stderr
    assert "API_KEY: secret 'readable'" not in result.stderr
    assert "a-value-that-exists" not in result.stdout + result.stderr


async def test_a_readable_reference_is_the_key_the_api_accepts(
        google: GoogleStandIn, tmp_path: Path) -> None:
    google.set_secret("operator-key", "resolved-operator-key-0123456789abcdef")
    port = free_port()
    process = start_bot(tmp_path, google_env(google, tmp_path, port,
                                             API_KEY="gsm:operator-key"))
    try:
        await asyncio.to_thread(wait_until_ready, port, process)

        def status(key: str) -> int:
            import urllib.error
            import urllib.request
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/me",
                                             headers={"X-Api-Key": key})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code

        assert await asyncio.to_thread(status, "resolved-operator-key-0123456789abcdef") == 200
        assert await asyncio.to_thread(status, "gsm:operator-key") == 401
    finally:
        process.terminate()
        _, stderr = await asyncio.to_thread(process.communicate, timeout=15)
    assert "resolved-operator-key" not in stderr
