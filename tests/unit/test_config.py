"""Settings: parsing, strict security, security headers, and no secret in any message."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from utils.config import WEBHOOK_SECRET_VARIABLES, WEBHOOK_SENDERS, ConfigError, load_settings

ALL_SECRETS = {
    "API_KEY": "k" * 32,
    "SUPABASE_URL": "https://project.supabase.co",
    # Distinct, 192-bit `whsec_` secrets: one per variable, as production demands.
    **{name: "whsec_" + base64.b64encode(name.encode().ljust(24, b"!")[:24]).decode()
       for name in WEBHOOK_SECRET_VARIABLES},
}


def load(monkeypatch: pytest.MonkeyPatch, **env: str):  # type: ignore[no-untyped-def]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(env_file=None)


def test_defaults_match_design(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    assert settings.app_env == "development"
    assert settings.database_url == "sqlite+aiosqlite:///./data/bot.db"
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8080)
    assert settings.supabase_jwt_audience == "authenticated"
    assert settings.webhook_tolerance_seconds == 300
    assert settings.rate_limit_backend == "memory"
    assert settings.rate_limit_write == "10/minute"
    assert settings.effective_log_format == "console"
    assert not settings.strict_security


def test_comma_separated_ids_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, OWNER_IDS="1, 22 ,333", ADMIN_ROLE_ID="44",
                    TRUSTED_PROXIES="10.0.0.0/8, ::1", ALLOWED_IPS="")
    assert settings.owner_ids == frozenset({1, 22, 333})
    assert settings.admin_role_id == frozenset({44})
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),
                                        ipaddress.ip_network("::1/128"))
    assert settings.allowed_ips == ()


def test_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, API_KEY="", DISCORD_TOKEN="", SUPABASE_URL="")
    assert settings.api_key is None
    assert settings.discord_token is None
    assert not settings.auth_configured


@pytest.mark.parametrize("trigger", [{"APP_ENV": "production"}, {"STRICT_SECURITY_MODE": "1"}])
def test_strict_mode_lists_every_missing_secret_of_enabled_senders(
        monkeypatch: pytest.MonkeyPatch, trigger: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, **trigger, WEBHOOKS_ENABLED=",".join(WEBHOOK_SENDERS))
    problems = "\n".join(caught.value.problems)
    assert "API_KEY (or SUPABASE_URL): missing" in problems
    for name in WEBHOOK_SECRET_VARIABLES:
        assert f"{name}: missing" in problems


def test_production_needs_only_the_senders_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, APP_ENV="production", API_KEY="k" * 40,
                    WEBHOOKS_ENABLED="legal-update",
                    LEGAL_UPDATE_WEBHOOK_SECRET=ALL_SECRETS["LEGAL_UPDATE_WEBHOOK_SECRET"])
    assert settings.enabled_webhooks == {"legal-update"}
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, APP_ENV="production", API_KEY="k" * 40,
             WEBHOOKS_ENABLED="legal-update,founder",
             LEGAL_UPDATE_WEBHOOK_SECRET=ALL_SECRETS["LEGAL_UPDATE_WEBHOOK_SECRET"])
    assert caught.value.problems == ["FOUNDER_WEBHOOK_SECRET: missing (required in strict "
                                     "security mode)"]


def test_by_default_the_senders_with_a_secret_are_enabled(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(founder_webhook_secret="f" * 40,
                             supabase_webhook_secret="s" * 40)
    assert settings.enabled_webhooks == {"founder", "supabase-auth", "gdpr-erasure"}


def test_an_unknown_sender_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, WEBHOOKS_ENABLED="founder,stripe")
    assert caught.value.problems[0].startswith("WEBHOOKS_ENABLED: ")
    assert "stripe" in caught.value.problems[0]


@pytest.mark.parametrize(("env", "expected"), [
    ({"API_KEY": "abc"}, "API_KEY: too weak (shorter than 32 characters)"),
    ({"FOUNDER_WEBHOOK_SECRET": "x"}, "FOUNDER_WEBHOOK_SECRET: too weak (shorter than 32"),
    ({"FOUNDER_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"short-key").decode()},
     "FOUNDER_WEBHOOK_SECRET: too weak (a whsec_ secret needs at least 128 bits)"),
    ({"LEGAL_UPDATE_WEBHOOK_SECRET": ALL_SECRETS["FOUNDER_WEBHOOK_SECRET"]},
     "LEGAL_UPDATE_WEBHOOK_SECRET: the same value as FOUNDER_WEBHOOK_SECRET"),
    ({"API_KEY": "changeme"}, "API_KEY: an example value, not a secret"),
    ({"SUPABASE_JWT_SECRET": ALL_SECRETS["API_KEY"]}, "the same value as API_KEY"),
])
def test_production_refuses_weak_secrets_naming_each(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, APP_ENV="production", **{**ALL_SECRETS, **env})
    assert any(expected in problem for problem in caught.value.problems), \
        caught.value.problems
    for value in env.values():
        assert value not in str(caught.value) or len(value) < 9  # never the secret itself


def test_weak_secrets_are_fine_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, API_KEY="abc", FOUNDER_WEBHOOK_SECRET="x")
    assert settings.weak_secrets() != []  # known, but only production refuses them


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_listening_beyond_loopback_without_auth_is_refused(
        monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, API_HOST=host)
    assert caught.value.problems[0].startswith(f"API_HOST: {host} is reachable")
    assert load(monkeypatch, API_HOST=host, ALLOW_UNAUTHENTICATED_API="1").api_host == host
    assert load(monkeypatch, API_HOST=host, API_KEY="k" * 32).api_host == host


def test_every_problem_is_reported_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, RATE_LIMIT_READ="lots", API_PORT="-1", LOG_FORMAT="xml",
             OWNER_IDS="x", RATE_LIMIT_BACKEND="redis")
    named = sorted(problem.split(":", 1)[0] for problem in caught.value.problems)
    assert named == ["API_PORT", "LOG_FORMAT", "OWNER_IDS", "RATE_LIMIT_READ", "REDIS_URL"]


def test_webhook_senders_match_the_routes() -> None:
    import webhooks

    assert {spec.name: spec.signed_with for spec in webhooks.WEBHOOKS} == WEBHOOK_SENDERS


def test_production_with_every_secret_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, APP_ENV="production", **ALL_SECRETS)
    assert settings.strict_security
    assert settings.effective_log_format == "json"


def test_legacy_jwt_secret_satisfies_the_auth_requirement(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in ALL_SECRETS.items() if k not in ("SUPABASE_URL", "API_KEY")}
    settings = load(monkeypatch, STRICT_SECURITY_MODE="1", SUPABASE_JWT_SECRET="s" * 40, **env)
    assert settings.supabase_url is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RATE_LIMIT_READ": "lots"}, "RATE_LIMIT_READ"),
        ({"DATABASE_URL": "postgresql://x/y"}, "DATABASE_URL"),
        ({"API_PORT": "70000"}, "API_PORT"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"OWNER_IDS": "12,abc"}, "OWNER_IDS"),
        ({"TRUSTED_PROXIES": "10.0.0.300/8"}, "TRUSTED_PROXIES"),
        ({"SUPABASE_URL": "ftp://example"}, "SUPABASE_URL"),
        ({"RATE_LIMIT_BACKEND": "redis"}, "REDIS_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379/0"}, "REDIS_URL"),
        ({"SHARD_IDS": "0,1"}, "SHARD_COUNT"),
        ({"SHARD_IDS": "0,4", "SHARD_COUNT": "4"}, "SHARD_IDS"),
    ],
)
def test_invalid_values_are_named(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                  variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, **env)
    assert any(problem.startswith(variable) for problem in caught.value.problems)


def test_several_problems_are_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, RATE_LIMIT_READ="lots", API_PORT="-1", LOG_FORMAT="xml")
    assert len(caught.value.problems) == 3


def test_problem_messages_never_contain_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "super-secret-value-that-must-not-leak"
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, APP_ENV="production", API_KEY=secret, API_PORT=secret)
    assert secret not in str(caught.value)


def test_a_bad_redis_url_is_named_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, REDIS_URL="http://default:hunter2-redis-pass@cache:6379/0")
    assert any(problem.startswith("REDIS_URL") for problem in caught.value.problems)
    assert "hunter2-redis-pass" not in str(caught.value)
    for accepted in ("redis://cache:6379/0", "rediss://cache:6380/0", "unix:///run/redis.sock",
                     "gsm:redis-url"):
        assert load(monkeypatch, REDIS_URL=accepted).redis_url is not None


def test_secret_values_are_hidden_in_repr(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(api_key="abcdefgh12345678", discord_token="token-value-123456")
    assert "abcdefgh12345678" not in repr(settings)
    assert sorted(settings.secret_values()) == ["abcdefgh12345678", "token-value-123456"]


def test_security_headers_defaults_and_production(make_settings) -> None:  # type: ignore[no-untyped-def]
    development = make_settings().security_headers()
    assert development == {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    production = make_settings(app_env="production").security_headers()
    assert production["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert production["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_security_header_override_and_blank_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, SECURITY_HEADER_X_FRAME_OPTIONS="SAMEORIGIN",
                    SECURITY_HEADER_REFERRER_POLICY="")
    headers = settings.security_headers()
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Referrer-Policy" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    from utils.config import Settings

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    documented = {line.lstrip("# ").split("=", 1)[0] for line in example.splitlines()
                  if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()}
    assert {name.upper() for name in Settings.model_fields} == documented
