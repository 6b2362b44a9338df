"""Server CPU time per request under a load generator faster than the server.

A Python client is slower than the server it loads, so requests per second from it measure the
client. Here `wrk` (Debian's package, installed when missing and we may) drives the server, and
the server's own CPU time (user + system, every thread, from /proc/PID/stat) before and after a
run, divided by the requests it served, is the figure. The baseline (a bare aiohttp process) is
measured in the same run, alternating with the project, several rounds, medians.

When wrk is not available the Python client still runs and says that it is client-bound when
the server's CPU is not saturated.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from harness.process import BOT, base_env, free_port, wait_until_ready

CLOCK_TICK = os.sysconf("SC_CLK_TCK")

BARE_APP = """
import sys
from aiohttp import web
async def ok(request): return web.json_response({"status": "ok"})
app = web.Application()
app.router.add_get("/health", ok); app.router.add_get("/readyz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def ensure_wrk() -> str | None:
    """The path of wrk, installing Debian's package when missing and we are root."""
    found = shutil.which("wrk")
    apt_get = shutil.which("apt-get")
    if found is None and apt_get is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run([apt_get, "install", "-y", "-qq", "wrk"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = shutil.which("wrk")
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime (fields 14, 15)


@dataclass
class Load:
    """One load run: requests served, seconds, the server's CPU seconds, latency p99."""

    requests: int
    seconds: float
    cpu: float
    p99_ms: float | None = None
    non_2xx: int = 0

    @property
    def cpu_us(self) -> float:
        return self.cpu / max(1, self.requests) * 1e6

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(m?s)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def run_wrk(wrk: str, pid: int, url: str, *, seconds: float = 3.0, connections: int = 16,
            headers: Sequence[str] = (), script: str | None = None) -> Load:
    """`wrk -t1 -c<connections>` against `url`; the CPU the server `pid` spent meanwhile."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", script]
    before = cpu_seconds(pid)
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    cpu = cpu_seconds(pid) - before
    found = _REQUESTS.search(out)
    if found is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    elapsed = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    p99 = _P99.search(out)
    non_2xx = _NON_2XX.search(out)
    return Load(int(found.group(1)), elapsed, cpu,
                float(p99.group(1)) * _UNIT[p99.group(2)] if p99 else None,
                int(non_2xx.group(1)) if non_2xx else 0)


async def client_load(url: str, *, count: int, connections: int,
                      headers: dict[str, str] | None = None) -> float:
    """Seconds aiohttp's client takes for `count` GETs of `url` over `connections` at once."""
    remaining = count
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                     headers=headers) as http:
        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with http.get(url) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(connections)])
        return time.perf_counter() - started


def run_python_client(pid: int, url: str, *, count: int = 3000, connections: int = 16,
                      headers: dict[str, str] | None = None) -> Load:
    """The fallback: aiohttp's client (usually slower than the server: client-bound)."""
    before = cpu_seconds(pid)
    elapsed = asyncio.run(client_load(url, count=count, connections=connections,
                                      headers=headers))
    return Load(count, elapsed, cpu_seconds(pid) - before)


def bench_app(api_key: str) -> web.Application:
    """The real app for a bench child process: a new SQLite file, JSON logs to /dev/null (as
    in production, through the masking pipeline), budgets no load can exhaust."""
    import api
    from store import migrate
    from utils.config import Settings
    from utils.logging import configure_logging

    configure_logging(log_format="json", stream=open(os.devnull, "w"))  # noqa: SIM115
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    migrate.upgrade(url)
    return api.create_app(Settings(_env_file=None, database_url=url, api_key=api_key,
                                   rate_limit_health="100000000/minute",
                                   rate_limit_read="100000000/minute"))


def client_bound(load: Load) -> bool:
    """The server was idle part of the time: the client, not the server, set the pace."""
    return load.cpu / load.seconds < 0.85


@dataclass
class Target:
    label: str
    path: str
    headers: tuple[str, ...] = ()
    method: str = "GET"
    server: str = "project"  # which started process serves it


def _lua_for(method: str, folder: Path) -> str | None:
    if method == "GET":
        return None
    script = folder / f"{method.lower()}.lua"
    script.write_text(f'wrk.method = "{method}"\n')
    return str(script)


class Servers:
    """Processes under test, by name, each with its port; stopped on exit."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bench-"))
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.ports: dict[str, int] = {}

    def start_bare(self, name: str = "bare") -> None:
        port = free_port()
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-c", BARE_APP, str(port)], text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ports[name] = port
        wait_until_ready(port, self.processes[name])

    def start_project(self, name: str, **env: str) -> None:
        """`python bot.py` with its logs (INFO, JSON, access lines included) to /dev/null."""
        port = free_port()
        workdir = self.folder / name
        workdir.mkdir()
        environment = base_env(workdir, port, LOG_FORMAT="json", LOG_LEVEL="INFO", **env)
        self.processes[name] = subprocess.Popen(
            [sys.executable, BOT], cwd=workdir, env=environment, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ports[name] = port
        wait_until_ready(port, self.processes[name])

    def start_command(self, name: str, argv: Sequence[str], **env: str) -> None:
        """Any server process that takes its port as the last argument."""
        port = free_port()
        self.processes[name] = subprocess.Popen(
            [*argv, str(port)], env={**os.environ, **env}, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ports[name] = port
        wait_until_ready(port, self.processes[name])

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Figure:
    label: str
    cpu_us: float  # median server CPU per request
    rate: float  # median requests/s
    bare_cpu_us: float  # the baseline's median in the same run
    client_bound: bool = False
    p99_ms: float | None = None
    paired: float | None = None  # median of (ours / bare) over back-to-back pairs

    @property
    def in_bare(self) -> float:
        """CPU of one request in bare requests (lower is better): the median ratio of pairs
        measured back to back when there are pairs, else the ratio of the medians."""
        return self.paired if self.paired is not None else self.cpu_us / self.bare_cpu_us

    @property
    def of_bare(self) -> float:
        """Bare CPU over ours (1.0 = as cheap as bare aiohttp; higher is better)."""
        return 1 / self.in_bare


def measure(servers: Servers, targets: Sequence[Target], *, rounds: int = 3,
            seconds: float = 3.0, connections: int = 16,
            say: Callable[[str], None] = print) -> list[Figure]:
    """Each round, every target right after a bare run (a pair, so drift in the machine's load
    hits both alike); per target the median of its pairs' ratios and of its figures."""
    wrk = ensure_wrk()
    if wrk is None:
        say("wrk is not available: falling back to the Python client (likely client-bound)")
    samples: dict[str, list[Load]] = {target.label: [] for target in targets}
    ratios: dict[str, list[float]] = {target.label: [] for target in targets}
    bare: list[Load] = []

    def one(name: str, path: str, headers: Sequence[str], method: str) -> Load:
        pid = servers.processes[name].pid
        url = servers.url(name, path)
        if wrk is not None:
            return run_wrk(wrk, pid, url, seconds=seconds, connections=connections,
                           headers=headers, script=_lua_for(method, servers.folder))
        return run_python_client(pid, url, connections=connections, headers=dict(
            header.split(": ", 1) for header in headers))

    # Warm-up: caches, sketches and lazily built state, then the timed rounds.
    one("bare", "/health", (), "GET")
    for target in targets:
        one(target.server, target.path, target.headers, target.method)
    for _ in range(rounds):
        for target in targets:
            baseline = one("bare", "/health", (), "GET")
            bare.append(baseline)
            load = one(target.server, target.path, target.headers, target.method)
            samples[target.label].append(load)
            ratios[target.label].append(load.cpu_us / baseline.cpu_us)
    bare_cpu = statistics.median(load.cpu_us for load in bare)
    figures = []
    for target in targets:
        loads = samples[target.label]
        p99s = [load.p99_ms for load in loads if load.p99_ms is not None]
        figures.append(Figure(
            target.label, statistics.median(load.cpu_us for load in loads),
            statistics.median(load.rate for load in loads), bare_cpu,
            client_bound=wrk is None and any(client_bound(load) for load in loads),
            p99_ms=statistics.median(p99s) if p99s else None,
            paired=statistics.median(ratios[target.label])))
    figures.insert(0, Figure("bare aiohttp GET /health", bare_cpu,
                             statistics.median(load.rate for load in bare), bare_cpu,
                             client_bound=wrk is None and any(map(client_bound, bare))))
    return figures


def print_figures(figures: Sequence[Figure], say: Callable[[str], None] = print) -> None:
    say(f"{'request':44s} {'CPU/request':>12s} {'req/s':>8s} {'in bare':>8s}")
    for figure in figures:
        bound = "  (client-bound)" if figure.client_bound else ""
        say(f"{figure.label:44s} {figure.cpu_us:9.0f} us {figure.rate:8.0f} "
            f"{figure.in_bare:8.2f}{bound}")
