"""Secret Manager through the real google-cloud-secret-manager REST client, against a stand-in.

Every test runs under a network guard: nothing may leave 127.0.0.1 (google-auth's Regional
Access Boundary lookup included).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable

import pytest

from harness.google_standins import FakeClock, GoogleStandIn
from tests.support.network_guard import NetworkGuard
from utils.config import Settings
from utils.logging import configure_logging
from utils.secret_manager import SecretError, SecretManager, service_account_credentials
from utils.secret_values import SecretValues

TTL = 3600.0
NEGATIVE_TTL = 30.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def manager(google: GoogleStandIn, clock: FakeClock) -> AsyncIterator[SecretManager]:
    secrets = SecretManager(google.key.project_id, credentials_json=google.key_json(),
                            api_endpoint=google.url, ttl=TTL, negative_ttl=NEGATIVE_TTL,
                            clock=clock)
    yield secrets
    await secrets.close()


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_reads_a_secret_with_a_self_signed_jwt(google: GoogleStandIn,
                                                     manager: SecretManager) -> None:
    google.set_secret("discord-token", "token-value-1")
    assert await manager.get("discord-token") == "token-value-1"
    assert google.secret_calls["discord-token"] == 1
    # The client signs its own JWT (checked by the stand-in): no token endpoint round trip.
    assert google.calls["token"] == 0
    assert any("cloud-platform" in str(claims.get("scope")) for claims in google.token_claims)


async def test_values_are_cached_for_the_ttl(google: GoogleStandIn, manager: SecretManager,
                                             clock: FakeClock) -> None:
    google.set_secret("api-key", "first")
    assert await manager.get("api-key") == "first"
    google.set_secret("api-key", "second")
    clock.advance(TTL - 1)
    assert await manager.get("api-key") == "first"
    assert google.secret_calls["api-key"] == 1
    clock.advance(2)
    assert await manager.get("api-key") == "second"
    assert google.secret_calls["api-key"] == 2
    assert await manager.get("api-key", "1") == "first"  # a pinned version


async def test_failures_are_cached_for_the_negative_ttl(
        google: GoogleStandIn, manager: SecretManager, clock: FakeClock) -> None:
    for _ in range(3):
        with pytest.raises(SecretError) as caught:
            await manager.get("missing")
        assert caught.value.kind == "NotFound"
    assert google.secret_calls["missing"] == 1
    google.set_secret("missing", "now-here")
    clock.advance(NEGATIVE_TTL + 1)
    assert await manager.get("missing") == "now-here"
    assert google.secret_calls["missing"] == 2


async def test_a_trailing_line_break_is_not_part_of_the_value(
        google: GoogleStandIn, manager: SecretManager) -> None:
    # `echo value | gcloud secrets versions add` stores "value\n": every comparison would fail.
    google.set_secret("echoed", "api-key-value\n")
    google.set_secret("windows", "api-key-value\r\n")
    google.set_secret("spaced", " padded value \t\n")
    assert await manager.get("echoed") == "api-key-value"
    assert await manager.get("windows") == "api-key-value"
    assert await manager.get("spaced") == " padded value \t"  # other whitespace is kept


async def test_concurrent_misses_make_one_call(google: GoogleStandIn,
                                               manager: SecretManager) -> None:
    google.set_secret("webhook", "whsec_c2VjcmV0LXZhbHVl")
    google.secret_delay = 0.2
    values = await asyncio.gather(*(manager.get("webhook") for _ in range(25)))
    assert set(values) == {"whsec_c2VjcmV0LXZhbHVl"}
    assert google.secret_calls["webhook"] == 1


def settings_with_many_references(make_settings: Callable[..., Settings],
                                  names: list[str]) -> Settings:
    variables = ["discord_token", "api_key", "supabase_jwt_secret", "llm_api_key",
                 "founder_webhook_secret", "legal_update_webhook_secret"]
    return make_settings(google_project_id="test-project",
                         **{variable: f"gsm:{name}" for variable, name in zip(
                             variables, names, strict=False)})


async def test_an_outage_delays_the_start_by_one_retry_budget_not_one_per_reference(
        google: GoogleStandIn, make_settings: Callable[..., Settings]) -> None:
    names = [f"secret-{number}" for number in range(6)]
    manager = SecretManager(google.key.project_id, credentials_json=google.key_json(),
                            api_endpoint=google.url, timeout=2.0)
    values = SecretValues(settings_with_many_references(make_settings, names), manager)
    google.fail_next("secret", *[503] * 1000)  # every read is retried until its budget is out
    started = time.monotonic()
    try:
        problems = await values.resolve_all()
    finally:
        await manager.close()
    # One read after another takes up to 6 budgets of 2 s; all at once take one.
    assert time.monotonic() - started < 4.0
    assert len(problems) == 6
    assert all("(ServiceUnavailable)" in problem for problem in problems)
    assert all(google.secret_calls[name] >= 2 for name in names)  # each one was retried


async def test_references_are_read_concurrently_a_bounded_number_at_once(
        google: GoogleStandIn, make_settings: Callable[..., Settings]) -> None:
    names = [f"secret-{number}" for number in range(6)]
    for name in names:
        google.set_secret(name, f"value-of-{name}")
    google.secret_delay = 0.3
    manager = SecretManager(google.key.project_id, credentials_json=google.key_json(),
                            api_endpoint=google.url, max_clients=3)
    values = SecretValues(settings_with_many_references(make_settings, names), manager)
    try:
        assert await values.resolve_all() == []
    finally:
        await manager.close()
    assert values.value("LEGAL_UPDATE_WEBHOOK_SECRET") == "value-of-secret-5"
    assert google.most_secret_reads_in_flight == 3


async def test_one_waiter_cancelled_does_not_cancel_the_others(
        google: GoogleStandIn, manager: SecretManager) -> None:
    google.set_secret("slow", "value-slow")
    google.secret_delay = 0.2
    first = asyncio.create_task(manager.get("slow"))
    second = asyncio.create_task(manager.get("slow"))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second == "value-slow"
    assert google.secret_calls["slow"] == 1


async def test_clear_forgets_values_and_failures(google: GoogleStandIn,
                                                 manager: SecretManager) -> None:
    google.set_secret("a", "value-a")
    await manager.get("a")
    with pytest.raises(SecretError):
        await manager.get("b")
    manager.clear()
    google.set_secret("b", "value-b")
    assert await manager.get("a") == "value-a"
    assert await manager.get("b") == "value-b"
    assert google.secret_calls["a"] == 2


async def test_denied_secret_is_a_typed_error(google: GoogleStandIn,
                                              manager: SecretManager) -> None:
    google.set_secret("locked", "x")
    google.denied_secrets.add("locked")
    with pytest.raises(SecretError) as caught:
        await manager.get("locked")
    assert caught.value.kind == "Forbidden"  # HTTP 403 through the REST transport
    assert "x" not in str(caught.value).replace("locked", "")


async def test_logs_name_the_source_never_the_value(google: GoogleStandIn,
                                                    manager: SecretManager) -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", level="DEBUG", stream=stream)
    try:
        google.set_secret("logged", "very-secret-value-123")
        await manager.get("logged")
        await manager.get("logged")
        with pytest.raises(SecretError):
            await manager.get("absent")
    finally:
        configure_logging(log_format="console", level="INFO")
    output = stream.getvalue()
    assert "very-secret-value-123" not in output
    assert '"source": "secret manager"' in output
    assert '"source": "cache"' in output
    assert '"error": "NotFound"' in output


def settings_with_references(make_settings: Callable[..., Settings], **extra: str) -> Settings:
    return make_settings(
        google_project_id="test-project",
        discord_token="gsm:discord-token",
        api_key="gsm:api-key@1",
        founder_webhook_secret="gsm:founder-webhook",
        legal_update_webhook_secret="whsec_bGl0ZXJhbC1zZWNyZXQ=",
        llm_api_key="gsm:llm-key",
        redis_url="gsm:not a valid name",
        **extra,
    )


async def test_resolve_all_names_every_unreadable_reference(
        google: GoogleStandIn, manager: SecretManager,
        make_settings: Callable[..., Settings]) -> None:
    google.set_secret("discord-token", "discord-token-value")
    google.set_secret("api-key", "api-key-value")
    google.set_secret("founder-webhook", "whsec_Zm91bmRlci12MQ==")
    values = SecretValues(settings_with_references(make_settings), manager)
    problems = await values.resolve_all()
    assert problems == [
        "REDIS_URL: invalid Secret Manager reference "
        "(the secret name must be 1-255 letters, digits, - or _)",
        "LLM_API_KEY: secret 'llm-key' could not be read from Secret Manager (NotFound)",
    ]
    assert values.value("DISCORD_TOKEN") == "discord-token-value"
    assert values.value("api_key") == "api-key-value"
    assert values.value("FOUNDER_WEBHOOK_SECRET") == "whsec_Zm91bmRlci12MQ=="
    assert values.value("LEGAL_UPDATE_WEBHOOK_SECRET") == "whsec_bGl0ZXJhbC1zZWNyZXQ="
    # A reference is never returned as a value, read or not.
    assert values.value("LLM_API_KEY") is None
    assert values.value("REDIS_URL") is None
    assert values.value("SUPABASE_WEBHOOK_SECRET") is None  # not set at all
    assert set(values.references) == {"DISCORD_TOKEN", "API_KEY", "FOUNDER_WEBHOOK_SECRET",
                                      "LLM_API_KEY"}


async def test_references_without_a_project_are_problems(
        make_settings: Callable[..., Settings]) -> None:
    values = SecretValues(make_settings(discord_token="gsm:discord-token"), None)
    assert await values.resolve_all() == [
        "DISCORD_TOKEN: refers to Secret Manager secret 'discord-token' but "
        "GOOGLE_PROJECT_ID is not set"]
    assert values.value("DISCORD_TOKEN") is None


async def test_rotation_takes_effect_without_a_restart(
        google: GoogleStandIn, manager: SecretManager, clock: FakeClock,
        make_settings: Callable[..., Settings]) -> None:
    google.set_secret("discord-token", "discord-token-value")
    google.set_secret("api-key", "api-key-value")
    google.set_secret("founder-webhook", "whsec_b2xkLXNlY3JldA==")
    google.set_secret("llm-key", "sk-llm-key-value-0000000000")
    values = SecretValues(settings_with_references(make_settings), manager,
                          poll_seconds=0.01)
    await values.resolve_all()
    assert values.value("FOUNDER_WEBHOOK_SECRET") == "whsec_b2xkLXNlY3JldA=="

    google.set_secret("founder-webhook", "whsec_bmV3LXNlY3JldA==")  # rotated on the server
    values.start()
    try:
        await asyncio.sleep(0.05)
        assert values.value("FOUNDER_WEBHOOK_SECRET") == "whsec_b2xkLXNlY3JldA=="  # TTL not out
        clock.advance(TTL + 1)
        await eventually(lambda: values.value("FOUNDER_WEBHOOK_SECRET")
                         == "whsec_bmV3LXNlY3JldA==")
    finally:
        await values.stop()
    # During the rotation both are accepted, the new one first.
    assert values.previous_value("FOUNDER_WEBHOOK_SECRET") == "whsec_b2xkLXNlY3JldA=="
    assert values.accepted_values("FOUNDER_WEBHOOK_SECRET") == (
        "whsec_bmV3LXNlY3JldA==", "whsec_b2xkLXNlY3JldA==")
    assert values.previous_value("DISCORD_TOKEN") is None  # unchanged: nothing previous
    clock.advance(TTL + 1)
    assert values.previous_value("FOUNDER_WEBHOOK_SECRET") is None
    assert values.accepted_values("FOUNDER_WEBHOOK_SECRET") == ("whsec_bmV3LXNlY3JldA==",)


async def test_a_failed_refresh_keeps_the_last_good_value(
        google: GoogleStandIn, manager: SecretManager, clock: FakeClock,
        make_settings: Callable[..., Settings]) -> None:
    google.set_secret("discord-token", "discord-token-value")
    values = SecretValues(make_settings(google_project_id="test-project",
                                        discord_token="gsm:discord-token"), manager)
    assert await values.resolve_all() == []
    google.denied_secrets.add("discord-token")
    clock.advance(TTL + 1)
    problems = await values.refresh_due()
    assert problems == ["DISCORD_TOKEN: secret 'discord-token' could not be read from "
                        "Secret Manager (Forbidden)"]
    assert values.value("DISCORD_TOKEN") == "discord-token-value"
    assert await values.refresh_due() == []  # retried only after the negative TTL
    google.denied_secrets.clear()
    clock.advance(NEGATIVE_TTL + 1)
    assert await values.refresh_due() == []
    assert google.secret_calls["discord-token"] == 3


async def test_refresh_now_reads_everything_again(
        google: GoogleStandIn, manager: SecretManager,
        make_settings: Callable[..., Settings]) -> None:
    google.set_secret("discord-token", "before-refresh")
    values = SecretValues(make_settings(google_project_id="test-project",
                                        discord_token="gsm:discord-token"), manager)
    await values.resolve_all()
    google.set_secret("discord-token", "after-refresh")
    assert await values.refresh_now() == []
    assert values.value("DISCORD_TOKEN") == "after-refresh"


async def test_from_settings(google: GoogleStandIn, make_settings: Callable[..., Settings]) -> None:
    assert SecretManager.from_settings(make_settings()) is None
    settings = make_settings(google_project_id=google.key.project_id,
                             google_credentials_json=google.key_json(),
                             secret_manager_api_endpoint=google.url,
                             secret_cache_ttl=60, secret_negative_cache_ttl=5)
    manager = SecretManager.from_settings(settings)
    assert manager is not None
    assert (manager.ttl, manager.negative_ttl) == (60, 5)
    google.set_secret("from-settings", "value-from-settings")
    try:
        assert await manager.get("from-settings") == "value-from-settings"
    finally:
        await manager.close()


async def test_without_the_fix_google_auth_would_call_the_iam_service(
        google: GoogleStandIn) -> None:
    """Why `boundary_lookup=False` exists: the library's own lookup, caught by the guard."""
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient

    google.set_secret("plain", "plain-value")
    guard = NetworkGuard()
    with guard.active():
        credentials = service_account_credentials(
            google.key_json(), scopes=["https://www.googleapis.com/auth/cloud-platform"])
        client = SecretManagerServiceClient(transport="rest", credentials=credentials,
                                            client_options={"api_endpoint": google.url})
        name = f"projects/{google.key.project_id}/secrets/plain/versions/latest"
        response = await asyncio.to_thread(client.access_secret_version, name=name)
        assert response.payload.data == b"plain-value"
        await eventually(lambda: bool(guard.attempts))
        await asyncio.to_thread(client.transport.close)
    assert any("iamcredentials.googleapis.com" in attempt for attempt in guard.attempts)
