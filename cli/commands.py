"""The administration commands of `python bot.py` that need no Discord: migrations, API keys."""

from __future__ import annotations

import argparse
import sys

from store import api_keys, migrate
from store.database import Database, ensure_sqlite_directory
from utils.config import Settings

EXIT_CONFIG_ERROR = 2


def confirmed(question: str, assume_yes: bool) -> bool:
    """--yes, or a "yes" typed on a terminal; never a silent default for a destructive step."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"{question} Refused: not a terminal; pass --yes to confirm.", file=sys.stderr)
        return False
    return input(f"{question} Type 'yes' to continue: ").strip().lower() == "yes"


def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    ensure_sqlite_directory(settings.database_url)
    url, action, revision = settings.database_url, args.action, args.revision
    if action == "upgrade":
        print(migrate.upgrade(url, revision or "head"))
    elif action == "downgrade":
        target = revision or "-1"
        if not confirmed(f"Downgrade the database to {target}? Tables and data added by the "
                          "undone migrations are dropped; back up first.", args.yes):
            return 1
        print(migrate.downgrade(url, target))
    elif action == "current":
        print(migrate.current(url))
    else:
        print(migrate.history(url))
    return 0


async def run_apikey(settings: Settings, args: argparse.Namespace) -> int:
    await migrate.upgrade_async(settings.database_url)
    database = Database(settings.database_url)
    try:
        if args.action == "create":
            lifetime = api_keys.parse_duration(args.expires) if args.expires else None
            created = await api_keys.create_key(
                database, name=args.name, scopes=api_keys.parse_scopes(args.scopes),
                expires_in=lifetime)
            print(created.plaintext)
            print(f"prefix {created.prefix}, scopes {','.join(created.scopes)}, expires "
                  f"{created.expires_at.isoformat() if created.expires_at else 'never'}",
                  file=sys.stderr)
            print("Store this key now: it is shown only once.", file=sys.stderr)
        elif args.action == "list":
            for key in await api_keys.list_keys(database):
                state = "revoked" if key.revoked_at else "active"
                expires = key.expires_at.isoformat() if key.expires_at else "never"
                print(f"{key.prefix}\t{key.name}\t{key.scopes.replace(' ', ',')}\t"
                      f"expires {expires}\t{state}")
        else:
            if not await api_keys.revoke_key(database, args.prefix):
                print(f"no active key with prefix {args.prefix!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.prefix}")
    except api_keys.ApiKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    finally:
        await database.dispose()
    return 0
