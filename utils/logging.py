"""Structured logging for the whole process, library loggers included.

Every record, whether it comes from structlog or from the standard library (discord.py, aiohttp,
Alembic), passes through the same chain: the request ID from the context, a UTC timestamp, and
`mask_record`, which runs every value through the sanitizers so that control characters and
secrets never reach a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor

from utils.sanitize import MASK, register_secrets, safe_log_block, safe_log_message

_PLAIN_TYPES = (int, float, bool, type(None))
_MULTILINE_KEYS = frozenset({"exception", "stack"})


# A field named like a credential is masked whatever its value looks like (masking by value
# only catches secrets this process knows and strings shaped like tokens).
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authorization|auth_header|api_?key|cookie|"
    r"credential|private_?key|session_?key|dsn", re.IGNORECASE)
# What describes a credential without being one: its name, kind, id, prefix or count.
_DESCRIPTIVE_SUFFIXES = ("_name", "_type", "_id", "_prefix", "_count", "_version", "_source")


def is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    return not lowered.endswith(_DESCRIPTIVE_SUFFIXES) and bool(_SENSITIVE_KEY.search(lowered))


def mask_record(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Sanitize every value of a record (the structlog processor); mask credential fields."""
    for key, value in list(event_dict.items()):
        if is_sensitive_key(key) and value is not None:
            event_dict[key] = MASK
            continue
        if isinstance(value, _PLAIN_TYPES):
            continue
        text = value if isinstance(value, str) else repr(value)
        event_dict[key] = safe_log_block(text) if key in _MULTILINE_KEYS \
            else safe_log_message(text)
    return event_dict


def _add_request_id(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """The ID of the request being served (see `bind_request_id`), when there is one."""
    request_id = current_request_id.get()
    if request_id is not None and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        mask_record,
    ]


def configure_logging(
    *,
    log_format: Literal["json", "console"] = "console",
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging through one masking pipeline to one handler."""
    register_secrets(secrets)
    # Records never show file, line, thread or process, so skip computing them: finding the
    # caller walks the whole (asyncio-deep) stack on every record.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared = _shared_processors()
    output = stream or sys.stderr
    # Our own records go straight from structlog to the stream: no stdlib LogRecord on the way,
    # which makes the per-request access line several times cheaper. A disabled level costs
    # one method call.
    structlog.configure(
        processors=[_name_key, *shared, renderer],
        logger_factory=structlog.WriteLoggerFactory(file=output),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        # Not cached: a reconfiguration (tests, or a new stream) reaches every logger, for
        # about 1 µs per record.
        cache_logger_on_first_use=False,
    )
    # Libraries' records (discord.py, aiohttp, Alembic) take the stdlib route through the same
    # processors, so they are masked and rendered alike.
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    global _access_sink
    _access_sink = _AccessSink(output, logging.getLevelNamesMapping()[level] <= logging.INFO) \
        if log_format == "json" else None
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # discord.py's HTTP and gateway debug logs carry payloads; keep them at INFO and above.
    logging.getLogger("discord.http").setLevel(max(logging.INFO, root.level))
    logging.getLogger("discord.gateway").setLevel(max(logging.INFO, root.level))


def get_logger(name: str) -> FilteringBoundLogger:
    # "logger" is a parameter of structlog.get_logger, so the name travels as "logger_name"
    # and `_name_key` files it under "logger", as stdlib records have it.
    logger: FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger


def _name_key(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    return event_dict


_CURRENT_KEY = "__current_request_id__"
# The request being served, for records and audit rows written anywhere below the handler; the
# `_add_request_id` processor puts it on every record.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def bind_request_id(request_id: str) -> Mapping[str, Token[Any]]:
    """Bind the request ID to this context (log records, audit rows); returns reset tokens."""
    return {_CURRENT_KEY: current_request_id.set(request_id)}


def reset_request_id(tokens: Mapping[str, Token[Any]]) -> None:
    current_request_id.reset(tokens[_CURRENT_KEY])


# --- The access line ----------------------------------------------------------------------------

_access_logger = get_logger("access")


class _AccessSink:
    """Where access lines go in JSON mode, written directly; on a buffered stream the lines
    finished in the same turn of the event loop share one flush. (sys.stderr writes each line
    at once when it is not a terminal; holding a turn's lines to write them together was tried
    and measured: 1.9 us of CPU per line to a pipe either way, so it was not kept.)"""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._flush_pending = False
        self._second = -1
        self._second_text = ""

    def timestamp(self) -> str:
        """As structlog's TimeStamper(fmt="iso", utc=True) writes it, the date part cached."""
        micro = time.time_ns() // 1000  # integers: exact, and a third cheaper than floats
        second = micro // 1_000_000
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{micro % 1_000_000:06d}Z"

    def write(self, line: str) -> None:
        self.stream.write(line)
        if self._flush_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.stream.flush()
            return
        self._flush_pending = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        with contextlib.suppress(ValueError, OSError):  # a stream closed meanwhile
            self.stream.flush()


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_JSON_TEXT: dict[str, str] = {}  # route templates and the like, JSON-encoded once
_MAX_JSON_TEXT = 1024
# Set by configure_logging in JSON mode: the access line is then written here directly.
_access_sink: _AccessSink | None = None


def _json_text(value: str) -> str:
    encoded = _JSON_TEXT.get(value)
    if encoded is None:
        encoded = json.dumps(value)
        if len(_JSON_TEXT) < _MAX_JSON_TEXT:
            _JSON_TEXT[value] = encoded
    return encoded


def log_access(method: str, route: str, status: int, ms: float, request_id: str,
               client_ip: str) -> None:
    """One access line. Every value is safe by construction (a method token, a route template
    from the router, a validated or generated request ID, an address), so in JSON mode the line
    skips the masking chain and is written as the pipeline would render it, several times
    cheaper; otherwise it goes through structlog like any record."""
    sink = _access_sink
    if sink is None:
        _access_logger.info("request", method=method, route=route, status=status, ms=ms,
                            request_id=request_id, client_ip=client_ip)
        return
    if not sink.enabled:
        return
    if method not in _KNOWN_METHODS:  # any other token the parser let through
        method = safe_log_message(method)
    sink.write(f'{{"method": {_json_text(method)}, "route": {_json_text(route)}, '
               f'"status": {status}, "ms": {float(ms)!r}, "request_id": "{request_id}", '
               f'"client_ip": {_json_text(client_ip)}, "event": "request", '
               f'"logger": "access", "level": "info", "timestamp": "{sink.timestamp()}"}}\n')
