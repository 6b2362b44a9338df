"""A small Dockerfile parser for the deploy-file tests: continuation lines, comments, and the
JSON exec form (no Docker engine runs here, so the file is checked by reading it)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


@dataclass
class Instruction:
    name: str  # upper case: FROM, RUN, CMD, ...
    arguments: str  # everything after the name, continuation lines joined
    comments: list[str] = field(default_factory=list)  # the comment lines just above

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None (Docker falls back to the
        shell form on invalid JSON, silently: so must we)."""
        return _json_array(self.arguments)

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """`--name=value` options first (HEALTHCHECK, COPY), then the rest."""
        flags: dict[str, str] = {}
        rest = self.arguments
        while match := re.match(r"--([a-z-]+)=(\S+)\s+", rest):
            flags[match.group(1)] = match.group(2)
            rest = rest[match.end():]
        return flags, rest


def _json_array(text: str) -> list[str] | None:
    if not text.strip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their comments; `\\` continues a line, comment lines inside a
    continuation are dropped (as Docker does), parser directives are skipped."""
    instructions: list[Instruction] = []
    comments: list[str] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            if not pending:
                comments.append(line.lstrip("#").strip())
            continue
        if not line:
            if not pending:
                comments = []
            continue
        continued = line.endswith("\\")
        pending.append(line[:-1].strip() if continued else line)
        if continued:
            continue
        name, _, arguments = " ".join(pending).partition(" ")
        instructions.append(Instruction(name.upper(), arguments.strip(), comments))
        pending, comments = [], []
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions
