"""Start `python bot.py` as a real process on a free port, for end-to-end tests and benches."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOT = str(PROJECT_ROOT / "bot.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(workdir: Path, port: int, **extra: str) -> dict[str, str]:
    """A minimal environment: nothing from the developer's shell or `.env` leaks in."""
    return {
        "PATH": "/usr/bin:/bin",
        "API_PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bot.db'}",
        "LOG_FORMAT": "json",
        # wait_until_ready polls /readyz fifty times a second: above the default probe budget.
        "RATE_LIMIT_HEALTH": "100000/minute",
        **extra,
    }


def start_bot(workdir: Path, env: dict[str, str], *args: str,
              log: IO[str] | None = None) -> subprocess.Popen[str]:
    """`python bot.py`; its log (stderr) goes to `log` when given. A pipe fills up after 64 KiB
    unless read, and then every log line blocks the process: long runs pass a file."""
    return subprocess.Popen([sys.executable, BOT, *args], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE if log is None else subprocess.DEVNULL,
                            stderr=subprocess.PIPE if log is None else log)


def wait_until_ready(port: int, process: subprocess.Popen[str], timeout: float = 30) -> float:
    """Seconds until /readyz answered 200; raises if the process exits or time runs out."""
    started = time.perf_counter()
    url = f"http://127.0.0.1:{port}/readyz"
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"bot exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise TimeoutError("bot did not become ready")
