"""Slow clients against the real process (issue 14, finding 4): 100 half-sent requests are all
closed within the configured limits while /health keeps answering."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from harness.process import base_env, free_port, start_bot, wait_until_ready
from tests.support.raw_http import exchange, parse_response, read_response

pytestmark = pytest.mark.e2e

HEADER_LIMIT, BODY_LIMIT = 1.0, 2.0
SLACK = 1.5  # timers, two loaded cores


async def half_sent(port: int, kind: str) -> tuple[float, int]:
    """Open, send part of a request, stall: seconds until the server closed, and its status."""
    # Timed from before the connect: the server's header clock starts when it accepts, and a
    # loaded client may resume after open_connection well after that (0.2-0.3 s seen).
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if kind == "headers":
        writer.write(b"POST /webhooks/reflections HTTP/1.1\r\nHost: x\r\nX-Slow: yes")
    else:
        writer.write(b"POST /webhooks/reflections HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"a\":")
    await writer.drain()
    try:
        data = await read_response(reader, limit_seconds=30)
        while await reader.read(65536):  # then the close
            pass
    finally:
        writer.close()
    return time.monotonic() - started, parse_response(data).status if data else 0


async def test_half_sent_requests_are_closed_while_health_answers(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path, port, HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_LIMIT),
                   HTTP_BODY_TIMEOUT_SECONDS=str(BODY_LIMIT),
                   APP_REFLECTIONS_WEBHOOK_SECRET="whsec_" + "A" * 43 + "=",
                   RATE_LIMIT_WEBHOOK="100000/minute")
    process = start_bot(tmp_path, env)
    try:
        wait_until_ready(port, process)
        slow = [asyncio.create_task(half_sent(port, "headers" if i % 2 else "body"))
                for i in range(100)]
        health_latencies = []
        while not all(task.done() for task in slow):
            started = time.monotonic()
            answer = await exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                                          b"Connection: close\r\n\r\n", limit_seconds=5)
            health_latencies.append(time.monotonic() - started)
            assert answer.status == 200
            await asyncio.sleep(0.05)
        results = [task.result() for task in slow]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    headers = [result for index, result in enumerate(results) if index % 2]
    bodies = [result for index, result in enumerate(results) if not index % 2]
    assert all(status == 408 for _, status in results), results
    assert max(seconds for seconds, _ in headers) < HEADER_LIMIT + SLACK
    assert max(seconds for seconds, _ in bodies) < BODY_LIMIT + SLACK
    assert min(seconds for seconds, _ in results) > HEADER_LIMIT * 0.9
    assert len(health_latencies) >= 10
    assert max(health_latencies) < 1.0
    assert "Traceback" not in stderr
    assert process.returncode == 0
