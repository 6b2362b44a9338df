"""Settings: parsing, strict security, security headers, and no secret in any message."""

from __future__ import annotations

import ipaddress

import pytest

from utils.config import WEBHOOK_SECRET_VARIABLES, ConfigError, load_settings

ALL_SECRETS = {
    "API_KEY": "k" * 32,
    "SUPABASE_URL": "https://project.supabase.co",
    **{name: "whsec_" + "A" * 32 for name in WEBHOOK_SECRET_VARIABLES},
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
def test_strict_mode_lists_every_missing_secret(monkeypatch: pytest.MonkeyPatch,
                                                trigger: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, **trigger, API_KEY="present-but-alone-123")
    problems = "\n".join(caught.value.problems)
    assert "API_KEY" not in problems
    for name in ["SUPABASE_URL", *WEBHOOK_SECRET_VARIABLES]:
        assert name in problems


def test_production_with_every_secret_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, APP_ENV="production", **ALL_SECRETS)
    assert settings.strict_security
    assert settings.effective_log_format == "json"


def test_legacy_jwt_secret_satisfies_the_auth_requirement(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in ALL_SECRETS.items() if k != "SUPABASE_URL"}
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
