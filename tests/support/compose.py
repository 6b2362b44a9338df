"""What Docker Compose hands a container, computed from the files (no Docker engine runs here):
its `.env` reading, its `${...}` interpolation and its precedence of environment sources."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from tests.support.dockerfile import Instruction

_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
_INTERPOLATION = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?)([-?])([^}]*))?\}|(\w+))")


class MissingVariableError(ValueError):
    """`${VAR:?message}` with VAR unset: Compose refuses to start."""


def parse_dotenv(text: str) -> dict[str, str]:
    """Compose's `.env` format: `NAME=value` lines, `#` comment lines, `export ` tolerated;
    an unquoted value ends at ` #` and is trimmed; 'single' quotes are literal, "double" quotes
    take backslash escapes. A blank value is an empty string (set, not unset)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _DOTENV_LINE.match(line)
        assert match is not None, f"Compose cannot read this .env line: {raw!r}"
        name, value = match.groups()
        if value[:1] == "'" and "'" in value[1:]:
            value = value[1:value.index("'", 1)]
        elif value[:1] == '"' and '"' in value[1:]:
            value = bytes(value[1:value.rindex('"')], "utf-8").decode("unicode_escape")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[name] = value
    return values


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's `$$`, `$VAR`, `${VAR}`, `${VAR:-default}` (default when unset or empty),
    `${VAR-default}` (when unset), `${VAR:?message}` and `${VAR?message}` (refuse)."""

    def substitute(match: re.Match[str]) -> str:
        escaped, name, colon, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        if bare:
            return variables.get(bare, "")
        current = variables.get(name)
        missing = current is None or (colon == ":" and current == "")
        if operator == "-":
            return argument if missing else str(current)
        if operator == "?":
            if missing:
                raise MissingVariableError(f"{name}: {argument}")
            return str(current)
        return current or ""

    return _INTERPOLATION.sub(substitute, value)


def image_environment(dockerfile: Iterable[Instruction]) -> dict[str, str]:
    """The `ENV NAME=value ...` of a Dockerfile (the lowest layer of a container's env)."""
    values: dict[str, str] = {}
    for item in dockerfile:
        if item.name == "ENV":
            for word in shlex.split(item.arguments):
                name, equals, value = word.partition("=")
                assert equals, f"use the ENV NAME=value form: {item.arguments!r}"
                values[name] = value
    return values


def _as_mapping(section: Any) -> dict[str, str | None]:
    """`environment:` as a mapping or as a list of `NAME=value` / `NAME` entries."""
    if section is None:
        return {}
    if isinstance(section, dict):
        return {str(name): None if value is None else str(value)
                for name, value in section.items()}
    entries: dict[str, str | None] = {}
    for entry in section:
        name, equals, value = str(entry).partition("=")
        entries[name] = value if equals else None
    return entries


def container_environment(service: Mapping[str, Any], *, image: Mapping[str, str],
                          env_files: Mapping[str, str], exported: Mapping[str, str],
                          dotenv: Mapping[str, str]) -> dict[str, str]:
    """The environment Compose gives one service's container. Lowest to highest: the image's
    `ENV`, the `env_file:` files (`env_files`: path -> its text), the `environment:` section,
    whose `${...}` are filled from the shell (`exported`) first and then from the project's `.env`
    (`dotenv`). `NAME` alone in `environment:` takes the shell's (or .env's) value, if any."""
    variables = {**dotenv, **exported}
    result = dict(image)
    declared = service.get("env_file") or []
    for entry in [declared] if isinstance(declared, str | dict) else declared:
        path = entry["path"] if isinstance(entry, dict) else entry
        result.update(parse_dotenv(env_files[path]))
    for name, value in _as_mapping(service.get("environment")).items():
        if value is None:
            if name in variables:
                result[name] = variables[name]
            continue
        result[name] = interpolate(value, variables)
    return result
