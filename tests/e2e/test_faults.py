"""Faults against the real process (issue 14): PostgreSQL going away during a stream of
deliveries (every delivery applied exactly once); Redis silent and down (no 5xx, requests back
under 50 ms once the breaker is open, one log line per change of state); the fake Discord
dropping the gateway (the bot resumes, the outbox keeps its items and delivers each once)."""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from harness.databases import ADMIN_DSN, temporary_postgres
from harness.process import base_env, free_port, start_bot, wait_until_ready
from harness.signing import PATHS, SECRETS, encode, standard_headers
from store import outbox
from store.database import Database
from store.models import AuditLog, Reflection, WebhookDelivery
from tests.conftest import service_missing
from tests.support.fake_discord import FakeDiscord
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

PATH, SECRET = PATHS["reflections"][0], SECRETS["APP_REFLECTIONS_WEBHOOK_SECRET"]


class Process:
    """`python bot.py` with its log in a file, stopped with SIGTERM."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.log_path = workdir / "bot.log"
        self._log = self.log_path.open("w")
        self.process = start_bot(workdir, base_env(workdir, self.port, **env), log=self._log)
        self.base = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        await asyncio.to_thread(wait_until_ready, self.port, self.process, 60)

    async def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, 20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()
        return self.process.returncode

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()
                if line.startswith("{")]


@pytest.fixture
def postgres() -> AsyncIterator[str]:
    try:
        with temporary_postgres("faults") as url:
            yield url
    except OSError as exc:
        service_missing("PostgreSQL", exc)


def delivery(number: int) -> tuple[bytes, dict[str, str]]:
    body = encode({"action": "upsert", "reflection_id": f"stream-{number}", "user_id": "u1",
                   "text": f"delivery {number}"})
    return body, standard_headers(SECRET, body, msg_id=f"msg_stream_{number}")


async def send_until_accepted(session: aiohttp.ClientSession, url: str, number: int,
                              seen: dict[str, int]) -> None:
    """A sender as the docs ask: retry the same delivery until a 200 (processed/duplicate)."""
    body, headers = delivery(number)
    while True:
        try:
            async with session.post(url, data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                seen[str(response.status)] = seen.get(str(response.status), 0) + 1
                if response.status == 200:
                    outcome = (await response.json())["status"]
                    seen[outcome] = seen.get(outcome, 0) + 1
                    return
                assert response.status == 503, await response.text()
                assert response.headers["Retry-After"] == "5"
        except (aiohttp.ClientError, TimeoutError):
            seen["no answer"] = seen.get("no answer", 0) + 1
        await asyncio.sleep(0.2)


async def terminate_backends(database_name: str) -> int:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        rows = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", database_name)
    finally:
        await connection.close()
    return len(rows)


MINIMUM_SENT = 300


async def test_postgres_going_away_mid_stream_loses_and_doubles_nothing(
        tmp_path: Path, postgres: str) -> None:
    url = make_url(postgres)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)
    bot = Process(tmp_path, DATABASE_URL=through_proxy, RATE_LIMIT_WEBHOOK="100000/minute",
                  **SECRETS)
    seen: dict[str, int] = {}
    issued: list[int] = []  # every delivery sent (each until it is accepted)
    try:
        await bot.ready()
        chaos_over = asyncio.Event()

        async def chaos() -> None:
            for cycle in range(4):  # connections dropped and refused, then backends killed
                await asyncio.sleep(0.4)
                await proxy.cut()
                await asyncio.sleep(0.6)
                await proxy.start()
                await asyncio.sleep(0.4)
                await terminate_backends(url.database or "")
                seen[f"cycle {cycle}"] = 1
            chaos_over.set()

        async with aiohttp.ClientSession() as session:
            # Deliveries flow for as long as the chaos lasts (and at least 300 of them), so
            # every outage meets deliveries in flight however fast they are applied.
            async def worker() -> None:
                while not chaos_over.is_set() or len(issued) < MINIMUM_SENT:
                    issued.append(len(issued))
                    await send_until_accepted(session, bot.base + PATH, issued[-1], seen)

            await asyncio.gather(chaos(), *[worker() for _ in range(8)])
    finally:
        assert await bot.stop() == 0
        await proxy.cut()
    sent = len(issued)
    database = Database(postgres)
    try:
        async with database.session() as session:
            # Each application writes one "webhook.accepted" audit row in its transaction.
            applied = await session.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.event == "webhook.accepted"))
            reflections = await session.scalar(select(func.count()).select_from(Reflection))
            recorded = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    finally:
        await database.dispose()
    print(f"sent {sent}, applied {applied}, answers {seen}")
    assert seen.get("503", 0) + seen.get("no answer", 0) > 0, "the outage never showed"
    assert applied == recorded == reflections == sent, "a delivery was lost or applied twice"
    assert not any("Traceback" in line for line in bot.log_path.read_text().splitlines())


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    address, _, database_number = redis_url.split("://", 1)[1].partition("/")
    host, port = address.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    yield proxy, f"redis://127.0.0.1:{proxy.port}/{database_number or '0'}"
    await proxy.cut()


async def timed_delivery(session: aiohttp.ClientSession, url: str, number: int
                         ) -> tuple[int, float]:
    body, headers = delivery(number)
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        return response.status, time.perf_counter() - started


async def test_redis_silent_then_down_costs_one_timeout_and_one_line_each(
        tmp_path: Path, redis_proxy: tuple[TcpProxy, str]) -> None:
    proxy, redis_url = redis_proxy
    bot = Process(tmp_path, REDIS_URL=redis_url, RATE_LIMIT_BACKEND="redis",
                  RATE_LIMIT_WEBHOOK="100000/minute", REDIS_BREAKER_SECONDS="1.0", **SECRETS)
    numbers = iter(range(10**6))
    report = {}
    try:
        await bot.ready()
        async with aiohttp.ClientSession() as session:
            for _ in range(10):
                assert (await timed_delivery(session, bot.base + PATH, next(numbers)))[0] == 200
            for fault in ("silent", "down"):
                if fault == "silent":
                    proxy.stall()
                else:
                    await proxy.cut()
                results = [await timed_delivery(session, bot.base + PATH, next(numbers))
                           for _ in range(60)]
                latencies = [seconds for _, seconds in results]
                report[fault] = (round(max(latencies) * 1000), round(
                    statistics.median(latencies[5:]) * 1000, 1))
                assert {status for status, _ in results} == {200}, results
                assert max(latencies) < 1.0  # one short Redis timeout at most
                assert statistics.median(latencies[5:]) < 0.05  # breaker open: Redis skipped
                async with session.get(bot.base + "/readyz") as ready:
                    assert ready.status == 200
                    assert (await ready.json())["checks"]["redis"] == "degraded"
                if fault == "silent":
                    proxy.resume()
                else:
                    await proxy.start()
                await asyncio.sleep(1.5)  # one pause, then a probe closes the breaker
                for _ in range(5):
                    assert (await timed_delivery(session, bot.base + PATH,
                                                 next(numbers)))[0] == 200
                async with session.get(bot.base + "/readyz") as ready:
                    assert (await ready.json())["checks"]["redis"] == "ok"
    finally:
        assert await bot.stop() == 0
    print(f"max / p50 after the breaker opened (ms): {report}")
    events = bot.events()
    serving = next(index for index, event in enumerate(events)
                   if event["event"] == "api listening")
    lines = [event["event"] for event in events[serving:]  # start-up warnings aside
             if event.get("level") in ("warning", "error") or "redis" in event["event"]]
    assert lines == ["redis unavailable: circuit open, doing without it",
                     "redis answers again: circuit closed"] * 2, lines


async def test_a_dropped_gateway_resumes_and_the_outbox_delivers_each_item_once(
        tmp_path: Path) -> None:
    fake = FakeDiscord()
    guild = (1 << 22) | 9
    channel = guild + 1
    fake.add_guild(guild, owner_id=1, channel_ids=(channel,))
    await fake.start()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    bot = Process(tmp_path, DISCORD_TOKEN="MTIz.gateway-drop.fake-token-for-the-test",
                  DISCORD_API_BASE=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url)
    database = Database(database_url)
    try:
        await bot.ready()
        fake.delay = 0.02  # a slow Discord: the drops land mid-drain
        fake.fail(rf"/channels/{channel}/messages", 503)  # and REST is down a moment too
        async with database.transaction() as session:
            for number in range(40):
                await outbox.enqueue(session, kind="channel_message", target_id=channel,
                                     payload={"content": f"item {number}"},
                                     dedupe_key=f"gateway-{number}")
        for _ in range(3):
            await asyncio.sleep(0.3)
            assert await fake.drop_gateway() == 1
        fake.failures.clear()
        for _ in range(300):  # retries back off 2, 4, 8 s
            if (await outbox.counts(database))["sent"] == 40:
                break
            await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as session, \
                session.get(bot.base + "/readyz") as ready:
            assert ready.status == 200, await ready.text()  # the gateway is back
    finally:
        fake.delay = 0.0
        await database.dispose()
        assert await bot.stop() == 0
        await fake.stop()
    created = fake.created.get(str(channel), [])
    assert sorted(message["content"] for message in created) == sorted(
        f"item {number}" for number in range(40)), "an item was lost or posted twice"
    assert len({message["nonce"] for message in created}) == 40
    assert fake.resumed >= 3, "the bot re-identified instead of resuming"
    assert len(fake.identified) == 1
    assert "Traceback" not in bot.log_path.read_text()
