"""The personal-data registry covers every table, and erasure/export use it."""

from __future__ import annotations

from store import personal_data
from store.database import Database
from store.models import Base, DiscordLink, OutboxMessage, Reflection, User

USER_COLUMN_HINTS = ("user_id", "email", "target_id", "display_name")


def test_every_table_is_classified() -> None:
    personal = {table.model.__tablename__ for table in personal_data.PERSONAL_TABLES}
    for table in Base.metadata.sorted_tables:
        assert (table.name in personal) != (table.name in personal_data.NOT_PERSONAL), \
            f"{table.name}: add it to PERSONAL_TABLES or NOT_PERSONAL (with the reason)"


def test_every_table_with_a_user_column_is_in_the_registry() -> None:
    registered = {(table.model.__tablename__, table.column)
                  for table in personal_data.PERSONAL_TABLES}
    for table in Base.metadata.sorted_tables:
        user_columns = [column.name for column in table.columns
                        if column.name.endswith(USER_COLUMN_HINTS)]
        if table.name == "users":
            user_columns = ["id"]
        for column in user_columns:
            if table.name in personal_data.NOT_PERSONAL:
                raise AssertionError(f"{table.name}.{column} looks personal")
            if column in ("email", "display_name"):
                continue  # erased with the row its table's owner column selects
            assert (table.name, column) in registered, f"{table.name}.{column} not registered"


async def seed(database: Database) -> None:
    async with database.transaction() as session:
        session.add_all([User(id="u1", email="u1@example.com"), User(id="u2")])
        await session.flush()
        session.add_all([
            DiscordLink(discord_user_id=111, user_id="u1"),
            Reflection(user_id="u1", external_id="r1", text="t1"),
            Reflection(user_id="u2", external_id="r2", text="t2"),
            OutboxMessage(kind="dm", target_id=111, payload={"embed": {}}, dedupe_key="a"),
            OutboxMessage(kind="channel_message", target_id=111, payload={}, dedupe_key="b"),
        ])


async def test_identity_follows_links_both_ways(database: Database) -> None:
    await seed(database)
    async with database.session() as session:
        by_discord = await personal_data.resolve_identity(session, discord_user_id=111)
        by_user = await personal_data.resolve_identity(session, user_id="u1")
    assert by_discord == by_user == personal_data.Identity(frozenset({"u1"}), frozenset({111}))


async def test_export_contains_exactly_the_persons_rows(database: Database) -> None:
    await seed(database)
    async with database.session() as session:
        identity = await personal_data.resolve_identity(session, discord_user_id=111)
        exported = await personal_data.export(session, identity)
    assert [row["id"] for row in exported["users"]] == ["u1"]
    assert [row["external_id"] for row in exported["reflections"]] == ["r1"]
    assert [row["kind"] for row in exported["outbox"]] == ["dm"]
    assert len(exported["discord_links"]) == 1


async def test_erasure_spares_other_people_and_channel_posts(database: Database) -> None:
    await seed(database)
    async with database.transaction() as session:
        identity = await personal_data.resolve_identity(session, discord_user_id=111)
        counts = await personal_data.erase(session, identity)
    assert counts == {"reflections": 1, "outbox": 1, "discord_links": 1, "users": 1}
    async with database.session() as session:
        identity_u2 = await personal_data.resolve_identity(session, user_id="u2")
        left = await personal_data.export(session, identity_u2)
    assert [row["external_id"] for row in left["reflections"]] == ["r2"]
