"""Settings: read once from the environment and `.env`, validated, then passed in.

No other module reads `os.environ`. `load_settings()` returns a validated `Settings` or raises
`ConfigError` listing every problem at once (never a secret's value).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from utils.webhook_secrets import parse_secrets, weakness

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Each webhook has its own secret; there is never a fallback from one to another.
WEBHOOK_SECRET_VARIABLES: tuple[str, ...] = (
    "SUPABASE_WEBHOOK_SECRET",
    "PREMIUM_INVALIDATE_WEBHOOK_SECRET",
    "APP_REFLECTIONS_WEBHOOK_SECRET",
    "FOUNDER_WEBHOOK_SECRET",
    "LEGAL_UPDATE_WEBHOOK_SECRET",
)

# Sender name (its route's name, what WEBHOOKS_ENABLED lists) -> the variable holding its secret.
WEBHOOK_SENDERS: dict[str, str] = {
    "supabase-auth": "SUPABASE_WEBHOOK_SECRET",
    "gdpr-erasure": "SUPABASE_WEBHOOK_SECRET",
    "premium-invalidate": "PREMIUM_INVALIDATE_WEBHOOK_SECRET",
    "reflections": "APP_REFLECTIONS_WEBHOOK_SECRET",
    "founder": "FOUNDER_WEBHOOK_SECRET",
    "legal-update": "LEGAL_UPDATE_WEBHOOK_SECRET",
}
# Placeholders people paste from examples and tutorials: never accepted as a secret in production.
EXAMPLE_SECRET_VALUES = frozenset({
    "changeme", "change-me", "change_me", "secret", "password", "example", "replace-me",
    "your-secret-here", "your-api-key", "whsec_replace_me", "test", "xxx",
})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# Header name -> (default in every mode, or None when only production sends it by default).
_BASE_SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
_PRODUCTION_SECURITY_HEADERS: dict[str, str] = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
_SECURITY_HEADER_FIELDS: dict[str, str] = {
    "X-Content-Type-Options": "security_header_x_content_type_options",
    "X-Frame-Options": "security_header_x_frame_options",
    "Referrer-Policy": "security_header_referrer_policy",
    "Strict-Transport-Security": "security_header_strict_transport_security",
    "Content-Security-Policy": "security_header_content_security_policy",
}


class ConfigError(Exception):
    """Settings are invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# What redis-py connects to (anything else it refuses at start-up).
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")
REDIS_URL_SCHEME_LIST = ", ".join(REDIS_URL_SCHEMES[:-1]) + " or " + REDIS_URL_SCHEMES[-1]


class Settings(BaseSettings):
    """Every variable of DESIGN.md's configuration table (names are the upper-cased fields)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    app_env: Literal["development", "production"] = "development"
    strict_security_mode: bool = False
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    discord_token: SecretStr | None = None
    owner_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    admin_role_id: Annotated[frozenset[int], NoDecode] = frozenset()
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None

    database_url: str = "sqlite+aiosqlite:///./data/bot.db"

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_key: SecretStr | None = None

    supabase_url: str | None = None
    supabase_jwt_secret: SecretStr | None = None
    supabase_jwt_audience: str = "authenticated"

    supabase_webhook_secret: SecretStr | None = None
    premium_invalidate_webhook_secret: SecretStr | None = None
    app_reflections_webhook_secret: SecretStr | None = None
    founder_webhook_secret: SecretStr | None = None
    legal_update_webhook_secret: SecretStr | None = None
    webhook_tolerance_seconds: int = Field(default=300, ge=1, le=86_400)
    webhook_allow_body_only_signatures: bool = False
    # Senders that are on (sender names); unset: every sender whose secret is set.
    webhooks_enabled: Annotated[frozenset[str] | None, NoDecode] = None
    # Listening beyond loopback with no API authentication needs this explicit opt-in.
    allow_unauthenticated_api: bool = False

    rate_limit_backend: Literal["memory", "redis"] = "memory"
    redis_url: SecretStr | None = None
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    allowed_ips: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    rate_limit_health: str = "60/minute"
    rate_limit_read: str = "30/minute"
    rate_limit_write: str = "10/minute"
    rate_limit_webhook: str = "60/minute"

    # None: the default value; "" (blank): header disabled.
    security_header_x_content_type_options: str | None = None
    security_header_x_frame_options: str | None = None
    security_header_referrer_policy: str | None = None
    security_header_strict_transport_security: str | None = None
    security_header_content_security_policy: str | None = None

    google_project_id: str | None = None
    google_secret_name: str | None = None
    google_credentials_json: SecretStr | None = None
    drive_folder_id: str | None = None
    drive_api_endpoint: str | None = None
    secret_manager_api_endpoint: str | None = None

    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None

    # --- knowledge and Secret Manager ---
    secret_cache_ttl: float = Field(default=3600, gt=0, le=7 * 86_400)
    secret_negative_cache_ttl: float = Field(default=30, gt=0, le=86_400)
    drive_sync_interval: int = Field(default=900, ge=0)  # 0: no scheduled sync
    pdf_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    pdf_max_pages: int = Field(default=500, ge=1)
    pdf_max_chars: int = Field(default=2_000_000, ge=1000)
    llm_timeout_seconds: float = Field(default=30, gt=0, le=600)
    learn_cooldown_seconds: float = Field(default=10, ge=0, le=3600)
    learn_daily_llm_budget: int = Field(default=200, ge=0)  # per guild and UTC day
    # --- hostile input and faults ---
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    http_keepalive_seconds: float = Field(default=60.0, gt=0, le=3600)
    http_max_connections_per_ip: int = Field(default=256, ge=1)
    redis_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    redis_breaker_seconds: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _blank_means_unset(cls, data: Any) -> Any:
        """`API_KEY=` in `.env` means "not set" (the default applies).

        Only SECURITY_HEADER_* keep a blank value: there it disables the header.
        """
        if not isinstance(data, Mapping):
            return data
        return {
            key: value for key, value in data.items()
            if value != "" or str(key).lower().startswith("security_header_")
        }

    @field_validator("owner_ids", "admin_role_id", "shard_ids", "trusted_proxies", "allowed_ips",
                     "webhooks_enabled", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("webhooks_enabled")
    @classmethod
    def _known_senders(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        unknown = sorted((value or frozenset()) - WEBHOOK_SENDERS.keys())
        if unknown:
            raise ValueError(f"unknown sender {', '.join(unknown)}; known: "
                             f"{', '.join(WEBHOOK_SENDERS)}")
        return value

    @field_validator("trusted_proxies", "allowed_ips", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(ipaddress.ip_network(str(v), strict=False) for v in value)
        return value

    @field_validator("rate_limit_health", "rate_limit_read", "rate_limit_write",
                     "rate_limit_webhook")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("expected a rate such as '60/minute' or '10 per second'") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        """redis-py would refuse any other scheme at start-up, with a traceback."""
        text = value.get_secret_value() if value is not None else ""
        if text and not text.startswith((*REDIS_URL_SCHEMES, "gsm:")):
            raise ValueError(f"must start with {REDIS_URL_SCHEME_LIST} "
                             "(or be a gsm: Secret Manager reference)")
        return value

    @field_validator("supabase_url", "llm_base_url", "discord_api_base", "discord_gateway_url",
                     "drive_api_endpoint", "secret_manager_api_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must be an http(s) or ws(s) URL")
        return value.rstrip("/") if value else value

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def strict_security(self) -> bool:
        """Production always implies strict security."""
        return self.strict_security_mode or self.is_production

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "console"

    @property
    def auth_configured(self) -> bool:
        return self.api_key is not None or self.supabase_url is not None \
            or self.supabase_jwt_secret is not None

    @property
    def enabled_webhooks(self) -> frozenset[str]:
        """The senders whose routes exist: WEBHOOKS_ENABLED, or every one with a secret set."""
        if self.webhooks_enabled is not None:
            return self.webhooks_enabled
        return frozenset(name for name, variable in WEBHOOK_SENDERS.items()
                         if self.secret(variable) is not None)

    def secret(self, variable: str) -> str | None:
        """The plain value of a secret setting by its variable name (None when unset)."""
        value = getattr(self, variable.lower())
        return value.get_secret_value() if isinstance(value, SecretStr) else None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def security_headers(self) -> dict[str, str]:
        """Headers sent on every response: defaults, production extras, then overrides."""
        headers = dict(_BASE_SECURITY_HEADERS)
        if self.is_production:
            headers.update(_PRODUCTION_SECURITY_HEADERS)
        for header, field in _SECURITY_HEADER_FIELDS.items():
            override: str | None = getattr(self, field)
            if override is None:
                continue
            if override.strip():
                headers[header] = override.strip()
            else:
                headers.pop(header, None)
        return headers

    def secret_values(self) -> list[str]:
        """Every configured secret's plain value, so the log pipeline can mask them."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return values

    def problems(self) -> list[str]:
        """Every consistency problem, plus missing and weak secrets when security is strict."""
        found: list[str] = []
        if self.rate_limit_backend == "redis" and self.redis_url is None:
            found.append("REDIS_URL: required when RATE_LIMIT_BACKEND=redis")
        if self.shard_ids is not None:
            if self.shard_count is None:
                found.append("SHARD_COUNT: required when SHARD_IDS is set")
            elif any(not 0 <= shard < self.shard_count for shard in self.shard_ids):
                found.append("SHARD_IDS: every id must be in 0..SHARD_COUNT-1")
        if not self.auth_configured and self.api_host not in LOOPBACK_HOSTS \
                and not self.allow_unauthenticated_api:
            found.append(f"API_HOST: {self.api_host} is reachable from other machines but no API "
                         "authentication is set (API_KEY or SUPABASE_URL); set one, listen on "
                         "127.0.0.1, or set ALLOW_UNAUTHENTICATED_API=1 on purpose")
        found.extend(self._unusable_webhook_secrets())
        if self.strict_security:
            found.extend(f"{name}: missing (required in strict security mode)"
                         for name in self.missing_secrets())
            found.extend(self.weak_secrets())
        return found

    def missing_secrets(self) -> list[str]:
        """What strict mode requires but is not set: one API authentication, and the secret of
        every enabled sender."""
        missing = []
        if not self.auth_configured:
            missing.append("API_KEY (or SUPABASE_URL)")
        for sender in sorted(self.enabled_webhooks):
            variable = WEBHOOK_SENDERS[sender]
            if self.secret(variable) is None and variable not in missing:
                missing.append(variable)
        return missing

    def _secret_variables(self) -> list[str]:
        return [name.upper() for name, value in self if isinstance(value, SecretStr)
                and name not in ("redis_url", "google_credentials_json")]

    def _unusable_webhook_secrets(self) -> list[str]:
        found = []
        for variable in WEBHOOK_SECRET_VARIABLES:
            value = self.secret(variable)
            if value is None or value.startswith("gsm:"):
                continue
            try:
                parse_secrets(value)  # the same reading the signature checks use
            except ValueError as exc:
                found.append(f"{variable}: {exc}")
        return found

    def weak_secrets(self) -> list[str]:
        """Secrets production refuses: short, low-entropy `whsec_`, example values, or one value
        used by two variables (each secret belongs to one sender or one purpose)."""
        found = []
        seen: dict[str, str] = {}
        for variable in self._secret_variables():
            value = self.secret(variable)
            if value is None or value.startswith("gsm:"):
                continue  # a Secret Manager reference is checked once it is resolved
            if value.strip().lower() in EXAMPLE_SECRET_VALUES:
                found.append(f"{variable}: an example value, not a secret")
                continue
            try:
                reason = weakness(value)
            except ValueError:
                continue  # reported as unusable already
            if reason is not None:
                found.append(f"{variable}: too weak ({reason})")
            if value in seen:
                found.append(f"{variable}: the same value as {seen[value]}; use one secret each")
            seen.setdefault(value, variable)
        return found


def _describe(error: Mapping[str, Any]) -> str:
    """One line per validation error; pydantic's `msg` never includes the input value."""
    location = error.get("loc") or ()
    variable = str(location[0]).upper() if location else "settings"
    return f"{variable}: {error.get('msg', 'invalid')}"


def load_settings(env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Read, validate and cross-check settings; raise ConfigError listing every problem.

    Every problem in one run: when some values are invalid, the cross-field checks still run,
    on the settings with those values left at their defaults.
    """
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        invalid = {str(error["loc"][0]) for error in exc.errors() if error.get("loc")}
        defaults = {name: Settings.model_fields[name].default for name in invalid
                    if name in Settings.model_fields}
        try:
            rest = Settings(_env_file=env_file, **{**overrides, **defaults})
        except ValidationError:
            raise ConfigError(problems) from None
        problems.extend(problem for problem in rest.problems()
                        if problem.split(":", 1)[0].lower() not in invalid)
        raise ConfigError(problems) from None
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    return settings
