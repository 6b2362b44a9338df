"""Every key the web application and its requests hold: `app[DATABASE]`, `request[PRINCIPAL]`.

The value types are imported for the type checker only, so any module can take its keys from
here without importing the modules that build the values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from edge.auth import AuthContext, Principal
    from edge.rate_limit import RateLimiter
    from edge.redis_breaker import RedisBreaker
    from edge.sessions import SessionSigner
    from knowledge.service import KnowledgeBase
    from members.premium import PremiumInvalidator
    from observability.history import History
    from observability.outbox_gauge import OutboxGauge
    from observability.prometheus import Metrics
    from observability.recording import Recorder
    from observability.series import Observatory
    from observability.snapshots import Snapshots
    from store.database import Database
    from utils.config import Settings
    from utils.secret_values import SecretSource


class GatewayStatus(Protocol):
    """What readiness needs to know of the Discord client (a `discord.Client` fits)."""

    def is_ready(self) -> bool: ...

    def is_closed(self) -> bool: ...


class StatsSource(Protocol):
    """Slash-command counts since start (the bot records them, the API reports them)."""

    def command_counts(self) -> dict[str, dict[str, int]]: ...


# Application keys: set once in api.create_app (or its cleanup contexts).
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
GATEWAY: web.AppKey[GatewayStatus | None] = web.AppKey("gateway")
REDIS: web.AppKey[RedisBreaker | None] = web.AppKey("redis")  # the client behind its breaker
PREMIUM: web.AppKey[PremiumInvalidator] = web.AppKey("premium")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
OBSERVATORY: web.AppKey[Observatory] = web.AppKey("observatory")
RECORDER: web.AppKey[Recorder] = web.AppKey("recorder")
OUTBOX_GAUGE: web.AppKey[OutboxGauge] = web.AppKey("outbox_gauge")
SNAPSHOTS: web.AppKey[Snapshots] = web.AppKey("operator_snapshots")
AUTH: web.AppKey[AuthContext] = web.AppKey("auth")
STATS: web.AppKey[StatsSource] = web.AppKey("command_stats")
SECRETS: web.AppKey[SecretSource] = web.AppKey("secrets")
KNOWLEDGE: web.AppKey[KnowledgeBase] = web.AppKey("knowledge")
HISTORY: web.AppKey[History] = web.AppKey("history")
SESSIONS: web.AppKey[SessionSigner | None] = web.AppKey("status_sessions")  # None: no API_KEY

# Request keys: set by a middleware, read by handlers and later middlewares.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
CLIENT_IP: web.RequestKey[str] = web.RequestKey("client_ip")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
