"""Sanitizers for text that leaves the process: logs, embeds and LLM prompts.

The implementations live in one module per concern; this module keeps the names every caller
imports:
- `utils.log_sanitize`: log lines (unambiguous escapes, masked secrets, bounded length);
- `utils.embed_sanitize`: embeds and code blocks (no pings, no markup, ordinary text intact);
- `utils.prompt_guard`: LLM prompts (delimiting, and detection built from
  `utils.prompt_normalize`, `utils.prompt_rules` and `utils.prompt_lexicon`);
- `utils.text_classes`: the invisible and control characters they share.
"""

from __future__ import annotations

from utils.embed_sanitize import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_NAME_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    EMBED_FOOTER_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    LINK_REMOVED,
    safe_code_block,
    safe_embed_text,
)
from utils.log_sanitize import (
    _UNSAFE_LOG_CHARS,
    LOG_MESSAGE_LIMIT,
    MASK,
    mask_secrets,
    register_secrets,
    safe_log_block,
    safe_log_message,
    truncate,
    unescape_log,
)
from utils.prompt_guard import (
    PROMPT_CLOSE,
    PROMPT_LIMIT,
    PROMPT_OPEN,
    PROMPT_PREAMBLE,
    PromptCheck,
    check_prompt,
    safe_prompt,
)

__all__ = [
    "EMBED_DESCRIPTION_LIMIT",
    "EMBED_FIELD_NAME_LIMIT",
    "EMBED_FIELD_VALUE_LIMIT",
    "EMBED_FOOTER_LIMIT",
    "EMBED_TITLE_LIMIT",
    "EMBED_TOTAL_LIMIT",
    "LINK_REMOVED",
    "LOG_MESSAGE_LIMIT",
    "MASK",
    "PROMPT_CLOSE",
    "PROMPT_LIMIT",
    "PROMPT_OPEN",
    "PROMPT_PREAMBLE",
    "_UNSAFE_LOG_CHARS",
    "PromptCheck",
    "check_prompt",
    "mask_secrets",
    "register_secrets",
    "safe_code_block",
    "safe_embed_text",
    "safe_log_block",
    "safe_log_message",
    "safe_prompt",
    "truncate",
    "unescape_log",
]
