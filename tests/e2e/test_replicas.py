"""Several replicas on one PostgreSQL and one Redis (issue 14): two `python bot.py` processes,
each running one of two shards against the fake Discord. A rate budget of N holds across both;
the same delivery sent to both is applied once; a premium invalidation on one is seen by the
other; outbox entries are delivered once each while both drain."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from harness.databases import temporary_postgres
from harness.process import base_env, free_port, start_bot, wait_until_ready
from harness.signing import PATHS, SECRETS, encode, standard_headers
from store import accounts, outbox
from store.database import Database
from store.models import Reflection, WebhookDelivery
from tests.conftest import service_missing
from tests.support.fake_discord import FakeDiscord
from tests.support.webhook_support import auth_event

pytestmark = pytest.mark.e2e

SHARDS = 2
GUILDS = [(shard << 22) | 7 for shard in range(SHARDS)]  # (guild_id >> 22) % 2 is its shard
TOKENS = ["MTIz.replica-zero.fake-token-aaaaaaaaaaaaaa", "MTIz.replica-one.fake-token-bbbbbbbbbbbb"]
MEMBER = 223456789012345678
BUDGET = 12  # webhook requests per minute per client, across both replicas


@dataclass
class Replicas:
    fake: FakeDiscord
    database: Database
    ports: list[int]
    processes: list[subprocess.Popen[str]]
    logs: list[Path]

    def url(self, replica: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[replica]}{path}"


@pytest.fixture
async def replicas(tmp_path: Path, redis_url: str) -> AsyncIterator[Replicas]:
    fake = FakeDiscord()
    for guild in GUILDS:
        fake.add_guild(guild, owner_id=1)
    await fake.start()
    try:
        postgres = temporary_postgres("replicas")
        database_url = postgres.__enter__()
    except OSError as exc:
        await fake.stop()
        service_missing("PostgreSQL", exc)
    ports = [free_port() for _ in range(SHARDS)]
    logs = [tmp_path / f"replica{index}.log" for index in range(SHARDS)]
    processes = []
    handles = [log.open("w") for log in logs]
    try:
        for index in range(SHARDS):
            workdir = tmp_path / f"replica{index}"
            workdir.mkdir()
            env = base_env(
                workdir, ports[index], DATABASE_URL=database_url, REDIS_URL=redis_url,
                RATE_LIMIT_BACKEND="redis", RATE_LIMIT_WEBHOOK=f"{BUDGET}/minute",
                TRUSTED_PROXIES="127.0.0.1/32", DISCORD_TOKEN=TOKENS[index],
                DISCORD_API_BASE=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url,
                SHARD_COUNT=str(SHARDS), SHARD_IDS=str(index), **SECRETS)
            processes.append(start_bot(workdir, env, log=handles[index]))
        for index in range(SHARDS):  # ready: database, and this replica's shard connected
            await asyncio.to_thread(wait_until_ready, ports[index], processes[index], 60)
        database = Database(database_url)
        yield Replicas(fake, database, ports, processes, logs)
        await database.dispose()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in handles:
            handle.close()
        await fake.stop()
        postgres.__exit__(None, None, None)
    for index, process in enumerate(processes):
        assert process.returncode == 0, logs[index].read_text()[-3000:]
        assert "Traceback" not in logs[index].read_text()


async def post(session: aiohttp.ClientSession, url: str, name: str, payload: Any, *,
               client: str, msg_id: str | None = None) -> tuple[int, dict[str, Any]]:
    path, secret = PATHS[name]
    body = encode(payload)
    headers = {**standard_headers(SECRETS[secret], body, msg_id=msg_id),
               "X-Forwarded-For": client}
    async with session.post(url + path, data=body, headers=headers) as response:
        return response.status, await response.json()


async def premium_answer(fake: FakeDiscord, shard: int) -> str:
    """Run /premium for MEMBER in the guild of `shard`: only that replica gets the event."""
    interaction = fake.interaction("premium", user_id=MEMBER, guild_id=GUILDS[shard])
    await fake.dispatch("INTERACTION_CREATE", interaction, shard=shard)
    callback = await fake.wait_for(lambda r: r.path.endswith(
        f"/{interaction['id']}/{interaction['token']}/callback"))
    content: str = callback.body["data"]["content"]
    return content


async def count(database: Database, model: Any) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_two_processes_share_budgets_guards_invalidations_and_the_outbox(
        replicas: Replicas) -> None:
    fake, database = replicas.fake, replicas.database
    bases = [replicas.url(index, "") for index in range(SHARDS)]
    assert sorted(fake.identified) == [[0, SHARDS], [1, SHARDS]], "one shard per process"

    async with aiohttp.ClientSession() as session:
        # A rate budget of N for one client across both replicas (shared in Redis).
        statuses = []
        for attempt in range(2 * BUDGET + 6):
            async with session.post(bases[attempt % 2] + "/webhooks/reflections", data=b"{}",
                                    headers={"X-Forwarded-For": "10.1.1.1",
                                             "Content-Type": "application/json"}) as response:
                statuses.append(response.status)
        assert sum(status != 429 for status in statuses) == BUDGET, statuses
        assert statuses[BUDGET:] == [429] * (len(statuses) - BUDGET)

        # The same delivery sent to both at once is applied once.
        reflection = {"action": "upsert", "reflection_id": "shared-1", "user_id": "user-r",
                      "text": "hello"}
        answers = await asyncio.gather(*[
            post(session, base, "reflections", reflection, client=f"10.2.0.{index}",
                 msg_id="msg_to_both_replicas") for index, base in enumerate(bases)])
        assert sorted(body["status"] for _, body in answers) == ["duplicate", "processed"]
        assert await count(database, Reflection) == 1
        assert await count(database, WebhookDelivery) == 1

        # A premium invalidation on replica 0 is seen by replica 1's cache.
        status, _ = await post(session, bases[0], "supabase-auth", auth_event(
            user_id="user-p", discord_id=str(MEMBER)), client="10.3.0.1")
        assert status == 200
        assert await premium_answer(fake, shard=1) == "You don't have premium."  # now cached
        async with database.transaction() as db_session:  # changed behind the caches' back
            await accounts.set_premium(db_session, "user-p", True)
        assert await premium_answer(fake, shard=1) == "You don't have premium.", \
            "replica 1 answers from its cache (else this test would prove nothing)"
        status, _ = await post(session, bases[0], "premium-invalidate", {"user_id": "user-p"},
                               client="10.3.0.2")
        assert status == 200
        for _ in range(50):
            answer = await premium_answer(fake, shard=1)
            if answer != "You don't have premium.":
                break
            await asyncio.sleep(0.1)
        assert answer == "You have premium. Thank you!", "replica 1 kept a stale premium status"

    # Outbox entries, drained by both replicas at once (a slow Discord keeps both busy): each
    # is posted exactly once.
    fake.delay = 0.02
    channel = GUILDS[0] + 1
    async with database.transaction() as db_session:
        for number in range(60):
            await outbox.enqueue(db_session, kind="channel_message", target_id=channel,
                                 payload={"content": f"item {number}"},
                                 dedupe_key=f"replicas-{number}")
    for _ in range(300):  # polls the database: no event crosses the process boundary
        if (await outbox.counts(database))["sent"] >= 60:
            break
        await asyncio.sleep(0.2)
    posts = fake.sent("POST", rf"/channels/{channel}/messages")
    nonces = [post.body["nonce"] for post in posts]
    assert len(nonces) == len(set(nonces)) == 60, "an entry was posted twice or not at all"
    assert sorted(post.body["content"] for post in posts) == sorted(
        f"item {number}" for number in range(60))
    assert {post.token.removeprefix("Bot ") for post in posts} == set(TOKENS), \
        "both replicas drained the outbox"
    assert await outbox.counts(database) == {"pending": 0, "sending": 0, "sent": 60, "dead": 0}
