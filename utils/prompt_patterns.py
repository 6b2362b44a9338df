"""How the prompt guard's rules are written and compiled.

A rule is a regex over one view of the text (`utils.prompt_normalize.views`) with a kind:
"strong" (flags alone), "directive" or "topic" (flag only in company; see `utils.prompt_guard`).
Patterns are written in plain lowercase and compiled through `fold_pattern`, the fold the text
gets, so one pattern matches every look-alike, accent and leetspeak spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from utils.prompt_normalize import fold_pattern

Kind = Literal["strong", "directive", "topic"]
View = Literal["words", "flat", "squeezed", "script", "raw"]


@dataclass(frozen=True)
class Rule:
    reason: str
    kind: Kind
    view: View
    source: str
    # A second pattern that must match somewhere too (two independent searches stay linear).
    also_source: str | None = None

    # Compiled on first use, not at import: the bot's start-up does not pay for the guard.
    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.source, self.view)

    @cached_property
    def also(self) -> re.Pattern[str] | None:
        return None if self.also_source is None else _compile(self.also_source, self.view)


def gap(words: int) -> str:
    return rf"(?: [a-z0-9]+){{0,{words}}}?"


def any_of(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


def _space_anchored(pattern: str) -> str:
    """In the words view every word follows a space, so a top-level branch that starts with
    `\\b` may start with a literal space instead: the regex engine then jumps from space to
    space instead of trying every position (several times faster on long text)."""
    out: list[str] = []
    depth = 0
    index = 0
    at_branch_start = True
    while index < len(pattern):
        if at_branch_start and pattern.startswith("\\b", index):
            out.append(" ")
            index += 2
            at_branch_start = False
            continue
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            at_branch_start = False
            continue
        if char == "[":
            end = pattern.index("]", index + 2)
            out.append(pattern[index : end + 1])
            index = end + 1
            at_branch_start = False
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        at_branch_start = char == "|" and depth == 0
        out.append(char)
        index += 1
    return "".join(out)


def _compile(pattern: str, view: View) -> re.Pattern[str]:
    flags = re.MULTILINE if view in ("flat", "raw") else 0
    # The raw view is only case-folded: its patterns are written as they must match.
    source = pattern if view == "raw" else fold_pattern(pattern, script=view == "script")
    if view == "words":
        source = _space_anchored(source)
    return re.compile(source, flags)


def rule(reason: str, kind: Kind, pattern: str, view: View = "words",
         also: str | None = None) -> Rule:
    return Rule(reason, kind, view, pattern, also)
