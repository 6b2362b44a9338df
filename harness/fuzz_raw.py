"""Raw bytes at the HTTP parser: request lines, headers and bodies no client library would send.

Every answer must be a well-formed refusal (or the connection closed), never a 5xx.
"""

from __future__ import annotations

import contextlib
import re
import socket

import hypothesis
from hypothesis import given
from hypothesis import strategies as st

from harness.fuzz_tally import Tally, hypothesis_settings

_TOKEN = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PRI", b"G\x00T",
                          b"\xff\xfe", b""])
_PATH = st.sampled_from([b"/health", b"/api/v1/me", b"/webhooks/reflections", b"/%00",
                         b"/api/v1/guilds/%C2%B2/config", b"*", b"http://x/", b"/" + b"a" * 9000])


def raw_requests() -> st.SearchStrategy[bytes]:
    header = st.tuples(st.binary(min_size=0, max_size=40), st.binary(min_size=0, max_size=200))
    framing = st.sampled_from([b"", b"Content-Length: 5\r\n", b"Content-Length: -1\r\n",
                               b"Content-Length: 99999999999999999999\r\n",
                               b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip\r\n",
                               b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n",
                               b"Expect: 100-continue\r\n", b"Upgrade: websocket\r\n"])
    structured = st.builds(
        lambda method, path, version, headers, frame, body: method + b" " + path + b" " + version
        + b"\r\nHost: x\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        + frame + b"\r\n" + body,
        _TOKEN, _PATH, st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""]),
        st.lists(header, max_size=4), framing, st.binary(max_size=64))
    return st.one_of(structured, st.binary(min_size=1, max_size=512))


def send_raw(port: int, data: bytes, wait: float = 0.5) -> int | None:
    """Send `data` and read the answer: its status, or None when none came within `wait`
    seconds (an incomplete request the server is still waiting on) or the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        received = b""
        with contextlib.suppress(OSError):
            sock.sendall(data)
            while b"\r\n" not in received and (chunk := sock.recv(4096)):
                received += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", received)
    return int(match.group(1)) if match else None


def run_raw(port: int, tally: Tally, *, examples: int, seed: int) -> None:
    @hypothesis_settings(examples)
    @given(data=raw_requests())
    def one(data: bytes) -> None:
        status = send_raw(port, data)
        if status is None:
            tally.requests += 1
            tally.by_source["raw"] += 1
            tally.closed_without_answer += 1
        else:
            tally.record("raw", "RAW", "-", status, "raw bytes")

    hypothesis.seed(seed)(one)()
