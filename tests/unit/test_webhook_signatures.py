"""The pure verification functions: published vectors, rotation, formats, time window."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from webhooks.signatures import (
    Verified,
    WebhookRejected,
    parse_secrets,
    verify,
    verify_body_only,
    verify_standard,
)

# Published by Standard Webhooks (the reference libraries' tests).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# Published by GitHub ("Validating webhook deliveries").
GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def sw_headers(signature: str = SW_SIGNATURE, **overrides: str) -> dict[str, str]:
    return {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TIMESTAMP),
            "webhook-signature": signature, **overrides}


def test_standard_webhooks_published_vector() -> None:
    verified = verify_standard(sw_headers(), SW_BODY, parse_secrets(SW_SECRET),
                               now=SW_TIMESTAMP, tolerance=300)
    assert verified == Verified(delivery_id=SW_ID, scheme="standard")


def test_github_published_vector() -> None:
    verified = verify_body_only({"X-Hub-Signature-256": GH_SIGNATURE}, GH_BODY,
                                parse_secrets(GH_SECRET))
    assert verified.scheme == "body-only"
    assert verified.delivery_id == "sha256:" + hashlib.sha256(GH_BODY).hexdigest()


def test_x_webhook_signature_header_is_accepted_too() -> None:
    assert verify_body_only({"X-Webhook-Signature": GH_SIGNATURE}, GH_BODY,
                            parse_secrets(GH_SECRET)).scheme == "body-only"


@pytest.mark.parametrize("signature_header", [
    f"v1,{'A' * 43}= {SW_SIGNATURE}",
    f"v1,{'A' * 43}=, {SW_SIGNATURE}",
    f"v2,whatever {SW_SIGNATURE}",
    f"{SW_SIGNATURE} v1a,asymmetric-signature",
])
def test_one_matching_signature_among_several_is_enough(signature_header: str) -> None:
    verify_standard(sw_headers(signature_header), SW_BODY, parse_secrets(SW_SECRET),
                    now=SW_TIMESTAMP, tolerance=300)


@pytest.mark.parametrize("configured", [
    f"whsec_b2xkLXNlY3JldA==,{SW_SECRET}",
    f"{SW_SECRET}, whsec_b2xkLXNlY3JldA==",
    f"v1,whsec_b2xkLXNlY3JldA==,v1,{SW_SECRET}",
])
def test_rotation_accepts_any_configured_secret(configured: str) -> None:
    assert len(parse_secrets(configured)) == 2
    verify_standard(sw_headers(), SW_BODY, parse_secrets(configured), now=SW_TIMESTAMP,
                    tolerance=300)


def test_supabase_secret_format() -> None:
    assert parse_secrets("v1," + SW_SECRET) == parse_secrets(SW_SECRET)


@pytest.mark.parametrize("bad", ["", " , ", "whsec_!!!notbase64", "whsec_"])
def test_unusable_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message is for operators)
        parse_secrets(bad)


@pytest.mark.parametrize(("offset", "accepted"), [(0, True), (300, True), (-300, True),
                                                   (301, False), (-301, False)])
def test_tolerance_boundaries(offset: int, accepted: bool) -> None:
    now = SW_TIMESTAMP + offset
    if accepted:
        verify_standard(sw_headers(), SW_BODY, parse_secrets(SW_SECRET), now=now, tolerance=300)
    else:
        with pytest.raises(WebhookRejected) as caught:
            verify_standard(sw_headers(), SW_BODY, parse_secrets(SW_SECRET), now=now,
                            tolerance=300)
        assert caught.value.status == 401


def test_body_signature_keyed_with_raw_bytes_of_a_whsec_secret() -> None:
    body = b'{"a": 1}'
    digest = hmac.new(SW_SECRET.encode(), body, hashlib.sha256).hexdigest()
    verify_body_only({"X-Hub-Signature-256": f"sha256={digest}"}, body, parse_secrets(SW_SECRET))
    decoded_key = base64.b64decode(SW_SECRET.removeprefix("whsec_"))
    wrong = hmac.new(decoded_key, body, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookRejected):
        verify_body_only({"X-Hub-Signature-256": f"sha256={wrong}"}, body,
                         parse_secrets(SW_SECRET))


def test_body_only_is_refused_unless_allowed() -> None:
    headers = {"X-Hub-Signature-256": GH_SIGNATURE}
    with pytest.raises(WebhookRejected) as caught:
        verify(headers, GH_BODY, parse_secrets(GH_SECRET), now=0, tolerance=300,
               allow_body_only=False)
    assert caught.value.status == 400  # no Standard Webhooks headers at all
    assert verify(headers, GH_BODY, parse_secrets(GH_SECRET), now=0, tolerance=300,
                  allow_body_only=True).scheme == "body-only"


def test_standard_headers_win_over_body_signature() -> None:
    headers = {**sw_headers("v1," + "A" * 43 + "="), "X-Hub-Signature-256": GH_SIGNATURE}
    with pytest.raises(WebhookRejected) as caught:
        verify(headers, SW_BODY, parse_secrets(SW_SECRET), now=SW_TIMESTAMP, tolerance=300,
               allow_body_only=True)
    assert caught.value.status == 401


def test_tampered_body_id_or_timestamp_fails() -> None:
    secrets = parse_secrets(SW_SECRET)
    for headers, body in [
        (sw_headers(), SW_BODY + b" "),
        (sw_headers(**{"webhook-id": "msg_other"}), SW_BODY),
        (sw_headers(**{"webhook-timestamp": str(SW_TIMESTAMP + 1)}), SW_BODY),
    ]:
        with pytest.raises(WebhookRejected) as caught:
            verify_standard(headers, body, secrets, now=SW_TIMESTAMP, tolerance=300)
        assert caught.value.status == 401


@pytest.mark.parametrize("value", ["v1,\x01abc", "v1,ÿé", "v1," + "A" * 5000, "v1,a\nb"])
def test_malformed_header_values_are_400(value: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verify_standard(sw_headers(value), SW_BODY, parse_secrets(SW_SECRET), now=SW_TIMESTAMP,
                        tolerance=300)
    assert caught.value.status == 400
