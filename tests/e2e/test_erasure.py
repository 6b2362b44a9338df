"""Erasing a person ends in the same state whichever door it came through.

The Supabase delete event, the GDPR erasure webhook and `/delete_my_data` all call
`members.erasure.erase_person`: every personal row goes, the person's tokens are revoked, the
cached premium status is dropped, and one audit row records it. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

import api
from members.premium import PremiumInvalidator
from store import outbox
from store.database import Database
from store.models import AuditLog, DiscordLink, OutboxMessage, Reflection, TokenRevocation, User
from tests.conftest import link_discord
from tests.support.discord_support import running_bot
from tests.support.fake_discord import FakeDiscord
from tests.support.webhook_support import (
    PATHS,
    SECRETS,
    auth_event,
    encode,
    settings_overrides,
    standard_headers,
)
from utils.config import Settings

GUILD = 1 << 22 | 11
MEMBER = 223456789012345678
USER = "user-erase-1"

EXPECTED = {
    "users": 0, "discord_links": 0, "reflections": 0, "dm_outbox": 0,
    "revoked_subjects": [USER], "premium_cached": None, "erasure_audits": 1,
}


async def seed(database: Database, premium: PremiumInvalidator) -> None:
    """A linked member with a reflection, a pending DM and a cached premium status."""
    await link_discord(database, USER, MEMBER)
    async with database.transaction() as session:
        session.add(Reflection(external_id="r-1", user_id=USER, text="private thoughts"))
        await outbox.enqueue(session, kind="dm", target_id=MEMBER, payload={"content": "hi"},
                             dedupe_key="dm-1")
    premium.cache.set(USER, True)


async def end_state(database: Database, premium: PremiumInvalidator) -> dict[str, Any]:
    async with database.session() as session:
        async def count(model: Any, *conditions: Any) -> int:
            return int(await session.scalar(
                select(func.count()).select_from(model).where(*conditions)) or 0)

        return {
            "users": await count(User, User.id == USER),
            "discord_links": await count(DiscordLink),
            "reflections": await count(Reflection),
            "dm_outbox": await count(OutboxMessage, OutboxMessage.kind == "dm"),
            "revoked_subjects": list(await session.scalars(select(TokenRevocation.subject))),
            "premium_cached": premium.cache.get(USER),
            "erasure_audits": await count(AuditLog, AuditLog.event == "gdpr.erasure"),
        }


async def post_webhook(client: TestClient[Any, Any], name: str,
                       payload: dict[str, Any]) -> None:
    path, variable = PATHS[name]
    body = encode(payload)
    response = await client.post(path, data=body,
                                 headers=standard_headers(SECRETS[variable], body))
    assert response.status == 200, await response.text()


async def delete_my_data(fake: FakeDiscord) -> None:
    interaction = fake.interaction("delete_my_data", user_id=MEMBER, guild_id=GUILD)
    await fake.dispatch("INTERACTION_CREATE", interaction)
    prompt = await fake.wait_for(lambda r: r.path.endswith(
        f"/{interaction['id']}/{interaction['token']}/callback"))
    message_id = prompt.response["resource"]["message"]["id"]
    confirm = fake.component_click(message_id, "confirm", user_id=MEMBER, guild_id=GUILD)
    await fake.dispatch("INTERACTION_CREATE", confirm)
    done = await fake.wait_for(lambda r: r.path.endswith(
        f"/{confirm['id']}/{confirm['token']}/callback"))
    assert done.body["data"]["content"].startswith("Done. Rows erased:")


@pytest.mark.parametrize("entry", ["supabase-delete", "gdpr-webhook", "discord-command"])
async def test_every_erasure_path_ends_in_the_same_state(
        entry: str, make_settings: Callable[..., Settings], database: Database,
        aiohttp_client: Callable[..., Any]) -> None:
    settings = make_settings(**settings_overrides())
    premium = PremiumInvalidator()  # shared by the bot and the API, as in production
    client = await aiohttp_client(api.create_app(settings, database=database, premium=premium))
    fake = FakeDiscord()
    fake.add_guild(GUILD)
    await fake.start()
    try:
        async with running_bot(fake, settings, database, premium=premium) as bot_client:
            await bot_client.outbox.stop()  # keep the pending DM where erasure must find it
            await seed(database, premium)
            if entry == "supabase-delete":
                await post_webhook(client, "supabase-auth", auth_event("DELETE", user_id=USER))
            elif entry == "gdpr-webhook":
                await post_webhook(client, "gdpr-erasure", {"user_id": USER})
            else:
                await delete_my_data(fake)
    finally:
        await fake.stop()
    assert await end_state(database, premium) == EXPECTED
