"""Status-page sessions (signed, expiring, revocable) and the per-minute history ring."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from edge.sessions import MAX_REVOKED, SessionSigner, cookie_name
from observability.history import MAX_ROUTES, OTHER, History

KEY = "operator-key-0123456789abcdef"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_is_signed_expires_and_names_nothing_secret() -> None:
    clock = FakeClock()
    signer = SessionSigner(KEY, seconds=3600, clock=clock)
    token = signer.issue()
    assert signer.valid(token)
    assert KEY not in token
    version, expires, nonce, signature = token.split(".")
    assert (version, int(expires)) == ("v1", int(clock.now) + 3600)
    assert (len(nonce), len(signature)) == (22, 43)
    assert signer.issue() != token  # a fresh nonce every time
    # Another replica with the same API_KEY accepts it; another API_KEY does not.
    assert SessionSigner(KEY, clock=clock).valid(token)
    assert not SessionSigner(KEY + "x", clock=clock).valid(token)
    clock.now += 3600
    assert not signer.valid(token)


def test_tampered_or_malformed_sessions_are_refused() -> None:
    signer = SessionSigner(KEY, clock=FakeClock())
    version, expires, nonce, signature = signer.issue().split(".")
    later = str(int(expires) + 86_400)
    other = "B" if signature[-1] != "B" else "C"  # always a different last character
    for token in (f"{version}.{later}.{nonce}.{signature}",
                  f"v2.{expires}.{nonce}.{signature}",
                  f"{version}.{expires}.{nonce}x.{signature}",
                  f"{version}.{expires}.{nonce}.{signature[:-1]}{other}",
                  f"{version}.{expires}.{nonce}", "", None, "a.b.c.d", "x" * 5000,
                  f"{version}.１２.{nonce}.{signature}"):
        assert not signer.valid(token), token


def test_a_revoked_session_is_refused_and_the_revocations_are_bounded() -> None:
    clock = FakeClock()
    signer = SessionSigner(KEY, seconds=60, clock=clock)
    token = signer.issue()
    signer.revoke(token)
    assert not signer.valid(token)
    signer.revoke("garbage")  # ignored
    for _ in range(MAX_REVOKED + 5):
        signer.revoke(signer.issue())
    assert len(signer._revoked) <= MAX_REVOKED
    clock.now += 61  # every revoked one has expired: the set empties on the next revocation
    signer.revoke(signer.issue())
    assert len(signer._revoked) == 1


def test_the_cookie_is_host_only_when_secure() -> None:
    assert cookie_name(True) == "__Host-status_session"
    assert cookie_name(False) == "status_session"


def summary(counts: dict[str, int], p95: float | None) -> dict[str, Any]:
    return {"counts": {"2xx": 0, "4xx": 0, "429": 0, "5xx": 0, **counts},
            "latency_ms": {"p50": p95, "p95": p95, "p99": p95}}


def test_points_round_trip_as_columns() -> None:
    clock = FakeClock()
    history = History(lambda: None, clock=clock)  # type: ignore[arg-type,return-value]
    history.add({"t": 100.0, "seconds": 60.0, "routes": {
        "GET /a": summary({"2xx": 5, "5xx": 1}, 12.5), "GET /b": summary({"4xx": 2}, None)},
        "webhooks": {"founder": summary({"5xx": 1}, 3.0)},
        "outbox": {"pending": 3, "sending": 1, "sent": 9, "dead": 2},
        "gateway_latency_ms": 41.25, "guilds": 7, "shards": 2, "rate_limit_refusals": 4,
        "drive_sync_runs": 1})
    history.add({"t": 160.0, "seconds": 60.0, "routes": {"GET /b": summary({"2xx": 1}, 1.0)},
                 "outbox": None, "gateway_latency_ms": None})
    body = history.read(60)
    first, second = body["points"]
    assert first == {"t": 100.0, "seconds": 60.0,
                     "requests": {"2xx": 5, "4xx": 2, "429": 0, "5xx": 1},
                     "outbox": {"pending": 3, "sending": 1, "dead": 2},
                     "gateway_latency_ms": 41.2, "guilds": 7, "shards": 2,
                     "rate_limit_refusals": 4, "drive_sync_runs": 1}
    assert (second["outbox"], second["gateway_latency_ms"], second["guilds"]) == (None,) * 3
    assert body["routes"]["GET /a"]["counts"]["5xx"] == [1, None]
    assert body["routes"]["GET /a"]["latency_ms"]["p95"] == [12.5, None]
    assert body["routes"]["GET /b"]["counts"]["4xx"] == [2, 0]
    assert body["routes"]["GET /b"]["latency_ms"]["p95"] == [None, 1.0]
    assert body["webhooks"] == {"founder": {
        "counts": {"2xx": [0, None], "4xx": [0, None], "429": [0, None], "5xx": [1, None]},
        "latency_ms": {"p50": [3.0, None], "p95": [3.0, None], "p99": [3.0, None]}}}
    assert history.read(1)["points"] == [second]


def test_the_ring_keeps_a_day_and_caps_series_per_point() -> None:
    history = History(lambda: None, minutes=1440)  # type: ignore[arg-type,return-value]
    routes = {f"GET /r{i}": summary({"2xx": i + 1}, float(i)) for i in range(MAX_ROUTES + 50)}
    for minute in range(1500):
        history.add({"t": float(minute), "routes": routes})
    assert len(history) == 1440
    body = history.read(1440)
    assert body["points"][0]["t"] == 60.0  # the oldest 60 fell out
    assert len(body["routes"]) == MAX_ROUTES
    other = body["routes"][OTHER]
    # The 51 quietest are summed; their quantile is the highest of theirs.
    assert other["counts"]["2xx"][0] == sum(range(1, 52))
    assert other["latency_ms"]["p95"][0] == 50.0
    assert body["points"][0]["requests"]["2xx"] == sum(range(1, MAX_ROUTES + 51))
    assert all(not math.isnan(v) for v in body["routes"]["GET /r149"]["latency_ms"]["p95"])


async def test_a_failing_source_skips_the_minute() -> None:
    calls = 0
    third = asyncio.Event()

    async def source() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        if calls == 1:
            raise RuntimeError("database away")
        return {"t": 1.0}

    history = History(source, interval=0.001)
    task = asyncio.create_task(history.run())
    await asyncio.wait_for(third.wait(), 5)
    task.cancel()
    assert len(history) == 2  # the first minute was skipped, the loop went on
