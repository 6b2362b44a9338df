"""Slash commands end to end: the real bot, the fake Discord, a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

import bot
from store import migrate
from store.database import Database
from store.models import AuditLog, DiscordLink, GuildConfig, Reflection, User
from tests.support.discord_support import running_bot
from tests.support.fake_discord import ADMINISTRATOR, FakeDiscord, Recorded, embed_problem
from utils.config import Settings

GUILD = 1 << 22 | 3
CHANNEL = GUILD + 1
OWNER, ADMIN, MEMBER = 21, 22, 23


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild(GUILD, channel_ids=(CHANNEL,))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeDiscord, make_settings: Callable[..., Settings],
                 database: Database) -> AsyncIterator[bot.CommunityBot]:
    settings = make_settings(owner_ids=str(OWNER), database_url=database.url)
    async with running_bot(fake, settings, database) as running:
        yield running


async def run(fake: FakeDiscord, name: str, user: int, *,
              resolved: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Dispatch a slash command; return the interaction payload (id and token identify it)."""
    interaction = fake.interaction(name, user_id=user, guild_id=GUILD, **options)
    if resolved is not None:
        interaction["data"]["resolved"] = resolved
    await fake.dispatch("INTERACTION_CREATE", interaction)
    return interaction


async def callback(fake: FakeDiscord, interaction: dict[str, Any]) -> Recorded:
    return await fake.wait_for(lambda r: r.path == (
        f"/interactions/{interaction['id']}/{interaction['token']}/callback"))


async def followup(fake: FakeDiscord, interaction: dict[str, Any]) -> Recorded:
    return await fake.wait_for(lambda r: r.method in ("POST", "PATCH")
                               and f"/{interaction['token']}" in r.path
                               and not r.path.endswith("/callback"))


async def test_owner_sees_migration_status(fake: FakeDiscord, client: bot.CommunityBot) -> None:
    interaction = await run(fake, "migrate", OWNER, subcommand="status")
    assert (await callback(fake, interaction)).body["type"] == 5  # deferred, thinking
    message = await followup(fake, interaction)
    content = message.body["content"]
    head = migrate.head_revision()
    assert f"current: {head} (head)" in content
    assert content.startswith("```")


@pytest.mark.parametrize("user", [ADMIN, MEMBER])
async def test_non_owner_is_refused_and_audited(fake: FakeDiscord, client: bot.CommunityBot,
                                                database: Database, user: int) -> None:
    interaction = await run(fake, "migrate", user, subcommand="upgrade",
                            permissions=ADMINISTRATOR if user == ADMIN else 0)
    reply = await callback(fake, interaction)
    assert reply.body["data"]["content"] == "This command is for the bot's owners only."
    assert reply.body["data"]["flags"] & 64
    async with database.session() as session:
        events = (await session.scalars(select(AuditLog.event))).all()
    assert "command.denied" in events
    assert "owner.migrate.upgrade" not in events


async def test_downgrade_needs_the_callers_confirmation(
        fake: FakeDiscord, client: bot.CommunityBot, database: Database) -> None:
    head = migrate.head_revision()
    interaction = await run(fake, "migrate", OWNER, subcommand="downgrade")
    prompt = await callback(fake, interaction)
    assert "Downgrade the database" in prompt.body["data"]["content"]
    message_id = prompt.response["resource"]["message"]["id"]

    stranger = fake.component_click(message_id, "confirm", user_id=MEMBER, guild_id=GUILD)
    await fake.dispatch("INTERACTION_CREATE", stranger)
    refused = await callback(fake, stranger)
    assert refused.body["data"]["content"].startswith("Only the person who ran the command")
    assert (await migrate.current_async(database.url)).startswith(head or "?")

    try:
        confirm = fake.component_click(message_id, "confirm", user_id=OWNER, guild_id=GUILD)
        await fake.dispatch("INTERACTION_CREATE", confirm)
        assert (await callback(fake, confirm)).body["type"] == 7  # the prompt is updated
        done = await fake.wait_for(lambda r: r.method == "PATCH" and "@original" in r.path
                                   and "Running downgrade" in str(r.body))
        assert done.body["content"].startswith("```")
        assert not (await migrate.current_async(database.url)).startswith(head or "?")
        async with database.session() as session:
            events = (await session.scalars(select(AuditLog.event))).all()
        assert "owner.migrate.downgrade" in events
    finally:
        await migrate.upgrade_async(database.url)


async def test_admin_sets_the_announcement_channel(fake: FakeDiscord, client: bot.CommunityBot,
                                                   database: Database) -> None:
    interaction = await run(fake, "config", ADMIN, subcommand="set",
                            permissions=ADMINISTRATOR,
                            options=[{"name": "announcement_channel", "type": 7,
                                      "value": str(CHANNEL)}],
                            resolved={"channels": {str(CHANNEL): {
                                "id": str(CHANNEL), "type": 0, "name": "news",
                                "permissions": "0", "guild_id": str(GUILD)}}})
    reply = await callback(fake, interaction)
    assert reply.body["data"]["content"].startswith("Saved.")
    async with database.session() as session:
        config = await session.get(GuildConfig, GUILD)
        audit = (await session.scalars(select(AuditLog).where(
            AuditLog.event == "guild.config.changed"))).one()
    assert config is not None
    assert config.announcement_channel_id == CHANNEL
    assert audit.details["before"]["announcement_channel_id"] is None
    assert audit.details["after"]["announcement_channel_id"] == str(CHANNEL)  # ids as strings


async def test_a_failing_command_answers_with_an_error_id_only(
        fake: FakeDiscord, client: bot.CommunityBot, database: Database) -> None:
    await database.dispose()  # the next query fails: a bug from the user's point of view
    database.engine.sync_engine.pool._creator = lambda *a: (_ for _ in ()).throw(  # type: ignore[attr-defined]
        RuntimeError("secret internal detail"))
    interaction = await run(fake, "premium", MEMBER)
    reply = await callback(fake, interaction)
    content = reply.body["data"]["content"]
    assert content.startswith("Something went wrong (error id `")
    assert "secret internal detail" not in content
    assert "RuntimeError" not in content


async def test_nothing_the_bot_sends_can_ping(fake: FakeDiscord, client: bot.CommunityBot,
                                             database: Database) -> None:
    for name, user, extra in [("ping", MEMBER, {}), ("help", OWNER, {}),
                              ("premium", MEMBER, {}), ("reflections", MEMBER, {}),
                              ("learn", MEMBER, {"options": [{"name": "topic", "type": 3,
                                                              "value": "@everyone risk"}]}),
                              ("config", MEMBER, {"subcommand": "show"})]:
        interaction = await run(fake, name, user, **extra)
        await callback(fake, interaction)
    sends = [r for r in fake.requests if r.method in ("POST", "PATCH") and isinstance(
        r.body, dict) and (r.path.endswith("/callback") or "/messages" in r.path)]
    assert len(sends) >= 6
    for request in sends:
        payload = request.body.get("data", request.body)
        if payload and ("content" in payload or "embeds" in payload):
            assert payload["allowed_mentions"] == {"parse": []}, request


async def link_member(database: Database) -> None:
    async with database.transaction() as session:
        session.add(User(id="app-user", email="m@example.com"))
        await session.flush()
        session.add_all([DiscordLink(discord_user_id=MEMBER, user_id="app-user"),
                         Reflection(user_id="app-user", external_id="r1", text="mine")])


async def test_reflections_fit_one_embed_however_long_they_are(
        fake: FakeDiscord, client: bot.CommunityBot, database: Database) -> None:
    """Ten reflections of the longest kind (4,000 characters each) are 40,000 characters; one
    embed takes 6,000 in all (the fake Discord refuses more, as Discord does): each is cut to
    its share, and the member sees all ten."""
    await link_member(database)
    async with database.transaction() as session:
        session.add_all([Reflection(user_id="app-user", external_id=f"long{index}",
                                    text=f"{index} " + "word " * 799) for index in range(9)])
    reply = await callback(fake, await run(fake, "reflections", MEMBER))
    assert reply.response is None or "code" not in reply.response, reply.response
    [embed] = reply.body["data"]["embeds"]
    assert embed_problem(embed) is None
    assert len(embed["fields"]) == 10


async def test_export_my_data_sends_the_callers_rows_as_a_private_file(
        fake: FakeDiscord, client: bot.CommunityBot, database: Database) -> None:
    await link_member(database)
    interaction = await run(fake, "export_my_data", MEMBER)
    assert (await callback(fake, interaction)).body["type"] == 5
    sent = await followup(fake, interaction)
    multipart = sent.body["multipart"]
    assert 'filename="my-data.json"' in multipart
    assert '"external_id": "r1"' in multipart
    assert "m@example.com" in multipart
    assert '"flags":64' in multipart  # ephemeral
    assert '"allowed_mentions":{"parse":[]}' in multipart


async def test_delete_my_data_erases_after_confirmation(
        fake: FakeDiscord, client: bot.CommunityBot, database: Database) -> None:
    await link_member(database)
    interaction = await run(fake, "delete_my_data", MEMBER)
    prompt = await callback(fake, interaction)
    message_id = prompt.response["resource"]["message"]["id"]
    confirm = fake.component_click(message_id, "confirm", user_id=MEMBER, guild_id=GUILD)
    await fake.dispatch("INTERACTION_CREATE", confirm)
    done = await callback(fake, confirm)
    assert done.body["data"]["content"] == "Done. Rows erased: 3."
    async with database.session() as session:
        assert (await session.scalars(select(User))).all() == []
        assert (await session.scalars(select(Reflection))).all() == []
        events = (await session.scalars(select(AuditLog.event))).all()
    assert "gdpr.erasure" in events


async def test_sync_publishes_commands_when_an_owner_asks(
        fake: FakeDiscord, client: bot.CommunityBot) -> None:
    (at_start,) = fake.sent("PUT", r"/applications/\d+/commands")  # a new database: once
    interaction = await run(fake, "sync", OWNER)
    await followup(fake, interaction)
    published = fake.sent("PUT", r"/applications/\d+/commands")[-1]
    assert published is not at_start
    assert {command["name"] for command in published.body} >= {"ping", "migrate", "config"}


async def test_sync_here_copies_the_global_commands_to_this_guild(
        fake: FakeDiscord, client: bot.CommunityBot) -> None:
    interaction = await run(fake, "sync", OWNER, options=[
        {"name": "here", "type": 5, "value": True}])
    reply = await followup(fake, interaction)
    assert "to this server" in reply.body["content"]
    (to_guild,) = fake.sent("PUT", rf"/applications/\d+/guilds/{GUILD}/commands")
    assert "ping" in {command["name"] for command in to_guild.body}


async def test_reload_knows_only_the_bots_own_cogs(fake: FakeDiscord,
                                                  client: bot.CommunityBot) -> None:
    unknown = await run(fake, "reload", OWNER,
                        options=[{"name": "cog", "type": 3, "value": "../../etc/passwd"}])
    reply = (await callback(fake, unknown)).body["data"]["content"]
    assert reply.startswith("Unknown cog. Choose one of: general, knowledge")
    assert "passwd" not in reply
    known = await run(fake, "reload", OWNER, options=[{"name": "cog", "type": 3,
                                                       "value": "general"}])
    assert (await callback(fake, known)).body["data"]["content"] == "Reloaded `general`."
    assert "ping" in {command.name for command in client.tree.get_commands()}


async def test_admin_announcement_is_a_sanitized_embed_that_pings_no_one(
        fake: FakeDiscord, client: bot.CommunityBot, database: Database) -> None:
    channel = {"channels": {str(CHANNEL): {"id": str(CHANNEL), "type": 0, "name": "news",
                                           "permissions": "0", "guild_id": str(GUILD)}}}
    interaction = await run(fake, "announce", ADMIN, permissions=ADMINISTRATOR, resolved=channel,
                            options=[{"name": "channel", "type": 7, "value": str(CHANNEL)},
                                     {"name": "title", "type": 3, "value": "@everyone news"},
                                     {"name": "message", "type": 3,
                                      "value": "**big** <@&1> [x](javascript:alert(1))"}])
    assert (await callback(fake, interaction)).body["data"]["content"] == "Posted."
    (posted,) = fake.sent("POST", rf"/channels/{CHANNEL}/messages")
    embed = posted.body["embeds"][0]
    assert posted.body["allowed_mentions"] == {"parse": []}
    assert "@everyone" not in embed["title"]
    assert embed["description"].startswith("\\*\\*big\\*\\*")
    assert "javascript:" not in embed["description"]
    async with database.session() as session:
        events = (await session.scalars(select(AuditLog.event))).all()
    assert "guild.announcement" in events
