"""Scoped API keys: shown once, hashed at rest, expiring and revocable."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from harness.process import BOT, base_env
from store import api_keys
from store.database import Database
from store.models import ApiKey


async def test_created_key_is_found_and_only_its_hash_is_stored(database: Database) -> None:
    created = await api_keys.create_key(database, name="ci",
                                        scopes=api_keys.parse_scopes("drive:sync"),
                                        expires_in=None)
    match = api_keys.KEY_PATTERN.fullmatch(created.plaintext)
    assert match is not None
    secret = match.group(2)
    async with database.session() as session:
        dump = " ".join(str(row) for row in (await session.execute(
            text("SELECT * FROM api_keys"))).all())
    assert secret not in dump
    assert api_keys.hash_secret(secret) in dump

    found = await api_keys.find_valid_key(database, created.plaintext)
    assert found is not None
    assert found.scopes == "drive:sync"


@pytest.mark.parametrize("tamper", [
    lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),
    lambda key: key.replace("bk_", "bx_"),
    lambda key: key + "x",
    lambda key: "",
])
async def test_wrong_keys_are_refused(database: Database, tamper) -> None:  # type: ignore[no-untyped-def]
    created = await api_keys.create_key(database, name="ci", scopes=("a",), expires_in=None)
    assert await api_keys.find_valid_key(database, tamper(created.plaintext)) is None


async def test_revoked_and_expired_keys_are_refused(database: Database) -> None:
    revoked = await api_keys.create_key(database, name="r", scopes=("a",), expires_in=None)
    assert await api_keys.revoke_key(database, revoked.prefix)
    assert not await api_keys.revoke_key(database, revoked.prefix)
    assert await api_keys.find_valid_key(database, revoked.plaintext) is None

    expired = await api_keys.create_key(database, name="e", scopes=("a",),
                                        expires_in=timedelta(minutes=1))
    async with database.transaction() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.prefix == expired.prefix))
        assert row is not None
        row.expires_at = row.created_at - timedelta(seconds=1)
    assert await api_keys.find_valid_key(database, expired.plaintext) is None


@pytest.mark.parametrize(("text_value", "expected"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)),
    ("90m", timedelta(minutes=90)),
])
def test_parse_duration(text_value: str, expected: timedelta) -> None:
    assert api_keys.parse_duration(text_value) == expected


@pytest.mark.parametrize("bad", ["", "0d", "30", "d", "-1d", "1y", "99999999d"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(api_keys.ApiKeyError):
        api_keys.parse_duration(bad)


@pytest.mark.parametrize("bad", ["", ",", "Drive:Sync", "a b", "x:", "drive:synch"])
def test_parse_scopes_rejects(bad: str) -> None:
    with pytest.raises(api_keys.ApiKeyError):
        api_keys.parse_scopes(bad)


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    env = base_env(tmp_path, 0)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, BOT, "apikey", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    created = run("create", "--name", "dashboard", "--scopes", "drive:sync,stats:read",
                  "--expires", "30d")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    match = api_keys.KEY_PATTERN.fullmatch(key)
    assert match is not None
    prefix, secret = match.groups()

    listed = run("list")
    assert prefix in listed.stdout
    assert "drive:sync,stats:read" in listed.stdout
    assert secret not in listed.stdout + listed.stderr

    assert run("revoke", prefix).returncode == 0
    assert "revoked" in run("list").stdout
    assert run("revoke", prefix).returncode == 1
    assert run("create", "--scopes", "BAD SCOPE").returncode == 2
