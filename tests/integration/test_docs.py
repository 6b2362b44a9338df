"""The docs match the code: settings, slash commands, CLI, webhooks, HTTP routes, links."""

from __future__ import annotations

import argparse
import ast
import fnmatch
import re
from collections.abc import AsyncIterator, Callable

import pytest
from discord import app_commands
from pydantic.fields import FieldInfo

import api
import bot
import webhooks
from cogs import EXTENSIONS
from command_kit.access import access_of
from control.policy import policy_of
from store.api_keys import SCOPES
from store.database import Database
from tests.support.doc_support import (
    README,
    ROOT,
    anchors,
    code_blocks,
    doc,
    env_file_variables,
    inline_code,
    links,
    markdown_files,
    only_code,
    read,
    table_rows,
    without_code_blocks,
)
from utils.config import Settings

# Settings that other engineers are adding in parallel (Google Secret Manager and Drive, the
# /learn limits, webhook switches, the unauthenticated-API guard). docs/configuration.md
# documents them already. Empty this set as they land: test_pending_settings_are_still_missing
# fails as soon as one becomes a Settings field, so the exception cannot outlive its reason.
PENDING_SETTINGS: frozenset[str] = frozenset()
# `bot.py` subcommands being added in parallel, documented in docs/commands.md already. Same
# rule: remove one when it lands (test_pending_cli_commands_are_still_missing says when).
PENDING_CLI_COMMANDS: frozenset[str] = frozenset()
# Upper-case names the docs show that are not settings, and why.
NOT_SETTINGS = {
    "POSTGRES_PASSWORD": "read by Docker Compose only (compose.yaml), never by the bot",
    "REQUIRE_SERVICES": "read by the test suite (tests/conftest.py), see README.md",
    "TEST_REDIS_URL": "read by the test suite (tests/conftest.py), see README.md",
    "TEST_POSTGRES_DSN": "read by the test suite (tests/conftest.py, harness/), see README.md",
    "WEBHOOK_URL": "an environment variable of the signing examples in docs/webhooks.md",
    "WEBHOOK_SECRET": "an environment variable of the signing examples in docs/webhooks.md",
}
_VARIABLE = re.compile(r"[A-Z*][A-Z0-9*]*(?:_[A-Z0-9*]+)+")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=", re.MULTILINE)


def settings_variables() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def configuration_table() -> dict[str, list[str]]:
    """docs/configuration.md: variable -> its row (one variable per row)."""
    rows: dict[str, list[str]] = {}
    for row in table_rows(doc("configuration.md")):
        name = only_code(row[0])
        if name is not None and re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
            assert name not in rows, f"{name} has two rows in docs/configuration.md"
            assert len(row) == 3, f"{name}: expected | variable | meaning | default |"
            rows[name] = row
    return rows


def env_example_variables() -> set[str]:
    return env_file_variables(read(ROOT / ".env.example"))


# --- Settings -----------------------------------------------------------------------------


def test_every_setting_is_in_the_configuration_doc_and_env_example() -> None:
    fields = settings_variables()
    assert not fields - configuration_table().keys(), "missing from docs/configuration.md"
    assert not fields - env_example_variables(), "missing from .env.example"


def test_every_documented_variable_is_a_setting() -> None:
    known = settings_variables() | PENDING_SETTINGS
    assert not configuration_table().keys() - known, "in docs/configuration.md, not in Settings"
    assert not env_example_variables() - known, "in .env.example, not in Settings"


def test_pending_settings_are_still_missing_and_already_documented() -> None:
    landed = PENDING_SETTINGS & settings_variables()
    assert not landed, (f"{sorted(landed)} are Settings fields now: remove them from "
                        "PENDING_SETTINGS and add them to .env.example")
    assert not PENDING_SETTINGS - configuration_table().keys()


def expected_default(field: FieldInfo) -> str:
    """How docs/configuration.md must begin a default cell for this field's default."""
    default = field.default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{int(default)}`"
    if isinstance(default, frozenset | tuple) and not default:
        return "empty"
    return f"`{default}`"


def test_documented_defaults_match_the_code() -> None:
    table = configuration_table()
    wrong = {}
    for name, field in Settings.model_fields.items():
        cell = table[name.upper()][2]
        if not cell.startswith(expected_default(field)):
            wrong[name.upper()] = (cell, expected_default(field))
    assert not wrong, f"documented default (cell, expected start): {wrong}"


def test_variables_named_anywhere_in_the_docs_exist() -> None:
    """A typo'd or removed variable in any doc fails here (`SECURITY_HEADER_*` patterns too)."""
    known = settings_variables() | PENDING_SETTINGS
    unknown: dict[str, set[str]] = {}
    for path in markdown_files():
        text = read(path)
        names = {match.group(0) for code in inline_code(text)
                 if (match := _VARIABLE.match(code.strip()))}
        names |= {name for block in code_blocks(text) for name in _ASSIGNMENT.findall(block)}
        for name in names:
            if name in NOT_SETTINGS:
                continue
            matched = fnmatch.filter(known, name) if "*" in name else [name] if name in known \
                else []
            if not matched:
                unknown.setdefault(path.name, set()).add(name)
    assert not unknown


def test_not_settings_are_explained_where_they_are_used() -> None:
    docs_text = "\n".join(read(path) for path in markdown_files())
    assert not set(NOT_SETTINGS) & settings_variables()
    assert all(name in docs_text for name in NOT_SETTINGS)


# --- Slash commands and the command line --------------------------------------------------


@pytest.fixture
async def registered_commands(
        make_settings: Callable[..., Settings]) -> AsyncIterator[dict[str, str | None]]:
    """Every leaf slash command of the offline-built bot and the access it declares."""
    database = Database("sqlite+aiosqlite:///:memory:")
    client = bot.create_bot(make_settings(), database=database)
    try:
        for extension in EXTENSIONS:  # what setup_hook loads, without starting the outbox
            await client.load_extension(extension)
        yield {command.qualified_name: access_of(command)
               for command in client.tree.walk_commands()
               if isinstance(command, app_commands.Command)}
    finally:
        await client.close()
        await database.dispose()


def documented_commands() -> dict[str, str]:
    documented = {}
    for row in table_rows(doc("commands.md")):
        name = only_code(row[0])
        if name is not None and name.startswith("/"):
            documented[name[1:]] = row[1]
    return documented


async def test_every_slash_command_is_documented_with_its_access(
        registered_commands: dict[str, str | None]) -> None:
    assert len(registered_commands) >= 10  # the walk found the cogs' commands
    assert documented_commands() == registered_commands


def cli_commands() -> dict[str, set[str]]:
    """bot.py's subcommands and, for each, its actions (`migrate upgrade`, `apikey create`)."""
    parser = bot._parser()
    found: dict[str, set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = set()
                for inner in sub._actions:  # a nested subparser or an `action` choice
                    if inner.dest == "action" and inner.choices:
                        found[name] |= set(inner.choices)
    return found


def test_every_cli_command_is_documented() -> None:
    text = doc("commands.md")
    commands = cli_commands()
    assert {"run", "migrate", "apikey", "check-config"} <= commands.keys()
    for name, actions in commands.items():
        assert f"`python bot.py {name}" in text, name
        for action in actions:
            assert f"`python bot.py {name} {action}" in text, f"{name} {action}"


def test_pending_cli_commands_are_still_missing() -> None:
    documented = set(re.findall(r"`python bot\.py ([a-z-]+)", doc("commands.md")))
    commands = set(cli_commands())
    landed = PENDING_CLI_COMMANDS & commands
    assert not landed, f"{sorted(landed)} exist now: remove them from PENDING_CLI_COMMANDS"
    assert documented - commands == PENDING_CLI_COMMANDS


# --- Webhooks and HTTP routes -------------------------------------------------------------


def test_every_webhook_is_documented() -> None:
    text = doc("webhooks.md")
    rows = table_rows(text)
    for spec in webhooks.WEBHOOKS:
        summary = [row for row in rows if f"`POST {spec.path}`" in row]
        assert summary, f"{spec.path} is not in the sender table of docs/webhooks.md"
        assert f"`{spec.name}`" in summary[0][0]
        assert f"`{spec.signed_with}`" in summary[0][2]
        heading = f"### `{spec.name}`: `POST {spec.path}`"
        assert heading in text, f"no payload section for {spec.name}"
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        for name, field in spec.payload_model.model_fields.items():
            assert f"| `{field.alias or name}` |" in section, f"{spec.name}: field {name}"


async def test_every_http_route_is_documented_with_its_scope(
        make_settings: Callable[..., Settings]) -> None:
    database = Database("sqlite+aiosqlite:///:memory:")
    app = api.create_app(make_settings(), database=database)
    text = doc("api.md")
    rows = table_rows(text)
    try:
        for route in app.router.routes():
            path = route.resource.canonical if route.resource else ""
            if route.method == "HEAD" or path.startswith("/webhooks/"):
                continue
            row = [cells for cells in rows if f"`{route.method} {path}" in cells[0]]
            assert row, f"{route.method} {path} is not in docs/api.md"
            scope = policy_of(route.handler).scope
            if scope is not None:
                assert f"`{scope}`" in row[0][1], f"{route.method} {path}: scope {scope}"
    finally:
        await database.dispose()
    assert all(f"`{scope}`" in text for scope in SCOPES)


# --- Links --------------------------------------------------------------------------------


def test_relative_links_point_to_existing_files_and_headings() -> None:
    broken = []
    for path in markdown_files():
        for target in links(read(path)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"{path.name}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(read(resolved)):
                broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken


def test_readme_links_every_doc_and_deployment_file() -> None:
    targets = set(links(read(README)))
    expected = {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")} | {
        "Dockerfile", "compose.yaml", "deploy/prometheus/prometheus.yml",
        "deploy/systemd/community-bot.service", "LICENSE"}
    assert expected <= targets


def test_every_table_starts_with_its_header() -> None:
    """A blank line inside a table ends it: the rows after it render as a paragraph of pipes."""
    headless = []
    for path in markdown_files():
        lines = without_code_blocks(read(path)).splitlines()
        for index, line in enumerate(lines):
            starts_block = line.lstrip().startswith("|") and (
                index == 0 or not lines[index - 1].lstrip().startswith("|"))
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if starts_block and not re.fullmatch(r"\s*\|[\s|:-]+\|?\s*", following):
                headless.append(f"{path.name}: {line[:60]}")
    assert not headless


# A console log line as docs show it: `[error    ] the event  [logger] key=value`.
_CONSOLE_LOG_LINE = re.compile(r"^\[(?:debug|info|warning|error|critical)\s*\] (.+?)\s+"
                               r"\[([\w.]+)\]", re.MULTILINE)


def project_strings() -> set[str]:
    """Every string literal of the code that runs (implicit concatenations joined, as Python
    joins them)."""
    found: set[str] = set()
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT).parts
        if relative[0] in {".venv", "tests", "bench", "harness"} or relative[0].startswith("."):
            continue
        for node in ast.walk(ast.parse(read(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_log_lines_the_docs_show_are_ones_the_code_logs() -> None:
    strings = project_strings()
    shown = [(path.name, event.strip()) for path in markdown_files()
             for block in code_blocks(read(path))
             for event, logger in _CONSOLE_LOG_LINE.findall(block)
             if not logger.startswith("discord")]  # discord.py's own lines
    assert shown, "the docs show log lines; the pattern found none"
    stale = [f"{name}: {event}" for name, event in shown if event not in strings]
    assert not stale, "log lines the code no longer prints"


def test_the_llm_budget_is_documented_per_server() -> None:
    (row,) = [row for row in table_rows(doc("configuration.md"))
              if row[0] == "`LEARN_DAILY_LLM_BUDGET`"]
    assert "per Discord server" in row[1]  # store.consume_llm_budget counts per guild
    assert "installation" not in row[1]


def readme_opening() -> str:
    """The README up to its first section: the two commands and what they need."""
    return read(README).split("\n## ", 1)[0]


def test_readme_opens_with_two_commands_and_says_what_the_tests_touch() -> None:
    opening = readme_opening()
    assert len(code_blocks(opening)) == 2
    conftest = read(ROOT / "tests" / "conftest.py")
    services = dict(re.findall(r'os\.environ\.get\("(TEST_\w+)", "([^"]+)"\)', conftest))
    assert set(services) == {"TEST_REDIS_URL", "TEST_POSTGRES_DSN"}
    for name, default in services.items():
        assert f"`{name}`" in opening, name
        assert f"`{default}`" in opening, default
    assert "flush" in opening  # what the suite does to the Redis database it is given


def test_readme_lists_every_command_line_command() -> None:
    text = read(README)
    for name in cli_commands():
        if name != "run":  # `python bot.py` (or `run`)
            assert f"`python bot.py {name}" in text, name


def test_downgrade_says_it_needs_yes_off_a_terminal() -> None:
    (row,) = [row for row in table_rows(doc("commands.md"))
              if (only_code(row[0]) or "").startswith("python bot.py migrate downgrade")]
    assert "`--yes`" in row[1]
    assert "terminal" in row[1]  # cli.commands.confirmed refuses without one
