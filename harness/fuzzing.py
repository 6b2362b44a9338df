"""Fuzz the running process from outside, as an attacker would; shared by tests/e2e/test_fuzz.py
(a quick slice in CI) and bench/fuzz.py (the full run).

Four sources of requests, all to 127.0.0.1 only:

- **schemathesis, stateless**: every operation of the process's own /openapi.json, in both
  generation modes (data that fits the schemas, and data that breaks them), with a valid key, no
  key, or a wrong one;
- **schemathesis, stateful**: sequences that follow the document's links (change a guild's
  config, read it back, read its audit);
- **webhooks** made by Hypothesis: payloads drawn from each sender's schema, correctly signed
  (so they reach the database), then mutated (replayed, gzipped, gzip announced but not sent,
  a flipped byte, cut short, stale or future timestamps, another sender's secret, wrong
  content type, NUL characters, huge numbers) or replaced by garbage;
- **raw bytes** at the HTTP parser: request lines, header fields and framing made of arbitrary
  bytes, sent over a bare socket.

Each request sends its own `X-Forwarded-For` (the process trusts 127.0.0.1 as a proxy), so the
rate limiter and the failed-authentication lockout see many clients and the fuzzer keeps
reaching the handlers. A response of 500 or more fails the run, except the documented 503 of a
feature that is off in this configuration (Drive sync, knowledge search), counted apart; the
process's log must hold no traceback.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import itertools
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from harness.fuzz_raw import run_raw
from harness.fuzz_tally import Tally, hypothesis_settings
from harness.process import base_env, free_port, start_bot, wait_until_ready
from harness.signing import PATHS, SECRETS

API_KEY = "fuzz-service-key-0123456789abcdef"
CONFORMANCE = [openapi_checks.status_code_conformance, openapi_checks.content_type_conformance,
               openapi_checks.response_schema_conformance]
_TRACEBACK = re.compile(r'Traceback \(most recent call last\)|"exception":')


def fuzz_env(workdir: Path, port: int, database_url: str, **extra: str) -> dict[str, str]:
    """The process under fuzzing: every webhook configured, the fuzzer's proxy trusted."""
    return base_env(workdir, port, DATABASE_URL=database_url, API_KEY=API_KEY,
                    TRUSTED_PROXIES="127.0.0.1/32,::1/128", **SECRETS, **extra)


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("detail", "")) if isinstance(body, dict) else ""


_client_numbers = itertools.count(1)


def client_addresses() -> st.SearchStrategy[str]:
    """A new client address for every example (Hypothesis would draw 10.0.0.1 again and again,
    and the rate limiter would answer most requests with 429)."""
    return st.builds(lambda: (lambda n: f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")(
        next(_client_numbers)))


AUTH_VARIANTS = ("key", "none", "wrong key")


def _headers(auth: str, client: str) -> dict[str, str]:
    headers = {"X-Forwarded-For": client}
    if auth == "key":
        headers["X-Api-Key"] = API_KEY
    elif auth == "wrong key":
        headers["X-Api-Key"] = "wrong-key-" + client
    return headers


def _conformance(tally: Tally, case: Any, response: Any) -> None:
    try:
        case.validate_response(response, checks=CONFORMANCE)
    except Exception as failure:  # a group of check failures, or one
        for item in getattr(failure, "exceptions", [failure]):
            tally.conformance[f"{case.method} {case.path}: {getattr(item, 'title', item)}"] += 1


def _operations(schema: Any) -> list[Any]:
    """Every operation of the document (a document that does not load fails here)."""
    return [result.ok() for result in schema.get_all_operations()]


def run_schemathesis(base_url: str, tally: Tally, *, examples: int, seed: int) -> None:
    """Every operation, both generation modes, `examples` cases each."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    session = requests.Session()
    for operation in _operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                strategy = operation.as_strategy(generation_mode=mode)
            except Exception:  # noqa: S112 (an operation with nothing to break in this mode)
                continue
            test = _stateless_test(base_url, session, tally, strategy, mode, examples)
            with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                hypothesis.seed(seed)(test)()


def _stateless_test(base_url: str, session: requests.Session, tally: Tally, strategy: Any,
                    mode: GenerationMode, examples: int) -> Callable[[], None]:
    @hypothesis_settings(examples)
    @given(case=strategy, client=client_addresses())
    def one(case: Any, client: str) -> None:
        for auth in AUTH_VARIANTS:  # each generated case three times: generating costs most
            response = case.call(base_url=base_url, session=session,
                                 headers=_headers(auth, client), timeout=15)
            tally.record(f"schemathesis-{mode.value}", case.method, case.path,
                         response.status_code, _detail(response))
            if mode is GenerationMode.POSITIVE:
                _conformance(tally, case, response)

    return one


def run_stateful(base_url: str, tally: Tally, *, scenarios: int, seed: int) -> None:
    """Sequences along the document's links (PUT config -> GET config / audit -> PUT ...)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    session = requests.Session()
    counter = iter(range(10**9))

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "session": session, "timeout": 15,
                    "headers": {"X-Api-Key": API_KEY,
                                "X-Forwarded-For": f"10.200.{next(counter) % 250}.1"}}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            tally.record("stateful", case.method, case.path, response.status_code,
                         _detail(response))
            _conformance(tally, case, response)

    Workflow.run(settings=hypothesis.settings(
        hypothesis_settings(scenarios), stateful_step_count=6))


# --- webhooks ------------------------------------------------------------------------------

def _sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


MUTATIONS = ["valid", "replay", "gzip", "gzip announced, not sent", "signed inflated",
             "flipped byte", "cut short", "stale", "future", "other secret",
             "text/plain", "nul text", "huge numbers", "deep nesting", "garbage signed",
             "garbage unsigned", "body-only signature", "no signature", "bad encoding"]


def _mutate(mutation: str, payload: Any, secret: str, other_secret: str, garbage: bytes,
            number: int) -> tuple[bytes, dict[str, str]]:
    """One delivery: body bytes and headers, signed (or broken) as `mutation` says."""
    if mutation == "nul text" and isinstance(payload, dict):
        payload = {key: (value + "\u0000" if isinstance(value, str) else value)
                   for key, value in payload.items()}
    elif mutation == "huge numbers" and isinstance(payload, dict):
        payload = {key: (10**30 if isinstance(value, int) and not isinstance(value, bool)
                         else value) for key, value in payload.items()}
        payload.setdefault("discord_user_id", 2**64)
    body = json.dumps(payload).encode() if not mutation.startswith("garbage") else garbage
    if mutation == "deep nesting":
        body = b"[" * 5000 + body + b"]" * 5000
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {"Content-Type": "application/json"}
    signed_body = body
    if mutation == "gzip":
        body = signed_body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif mutation == "gzip announced, not sent":
        headers["Content-Encoding"] = "gzip"
    elif mutation == "signed inflated":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif mutation == "bad encoding":
        headers["Content-Encoding"] = ("br", "deflate", "gzip, gzip", "zstd")[number % 4]
    elif mutation == "stale":
        timestamp -= 3600
    elif mutation == "future":
        timestamp += 3600 + number % 10**6
    elif mutation == "text/plain":
        headers["Content-Type"] = "text/plain"
    key = other_secret if mutation == "other secret" else secret
    if mutation not in ("no signature", "garbage unsigned", "body-only signature"):
        headers.update({"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                        "webhook-signature": _sign(key, msg_id, timestamp, signed_body)})
    if mutation == "body-only signature":
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(
            secret.encode(), body, hashlib.sha256).hexdigest()
    if mutation == "flipped byte" and body:
        index = number % len(body)
        body = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1:]
    elif mutation == "cut short" and body:
        body = body[: max(0, len(body) // 2)]
    return body, headers


def run_webhooks(base_url: str, tally: Tally, *, examples: int, seed: int) -> None:
    """Deliveries drawn from each sender's payload schema, signed, mutated, or garbage."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    session = requests.Session()
    senders = {path: secret for path, secret in PATHS.values()}
    secrets = sorted(set(SECRETS.values()))
    for operation in _operations(schema):
        if operation.path not in senders:
            continue
        secret = SECRETS[senders[operation.path]]
        other = next(value for value in secrets if value != secret)
        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        test = _webhook_test(base_url + operation.path, session, tally, strategy, secret,
                             other, examples)
        hypothesis.seed(seed)(test)()


def _webhook_test(url: str, session: requests.Session, tally: Tally, strategy: Any,
                  secret: str, other: str, examples: int) -> Callable[[], None]:
    path = url.split("://", 1)[1].split("/", 1)[1]

    @hypothesis_settings(examples)
    @given(case=strategy, mutations=st.lists(st.sampled_from(MUTATIONS), min_size=4,
                                             max_size=4),
           garbage=st.binary(max_size=2048), number=st.integers(0, 2**32),
           client=client_addresses())
    def one(case: Any, mutations: list[str], garbage: bytes, number: int, client: str) -> None:
        payload = case.body if isinstance(case.body, dict | list) else {}
        for mutation in ["valid", *mutations]:  # one drawn payload, five deliveries
            send(payload, mutation, garbage, number, client)

    def send(payload: Any, mutation: str, garbage: bytes, number: int, client: str) -> None:
        body, headers = _mutate(mutation, payload, secret, other, garbage, number)
        headers["X-Forwarded-For"] = client
        for _ in range(2 if mutation == "replay" else 1):
            try:
                response = session.post(url, data=body, headers=headers, timeout=15)
            except requests.RequestException as exc:
                tally.no_answer.append(f"POST /{path} {mutation}: {type(exc).__name__} "
                                       f"{body[:300]!r}")
                return
            tally.record(f"webhook-{mutation}", "POST", "/" + path, response.status_code,
                         _detail(response))

    return one


def tracebacks(log_text: str) -> list[str]:
    """Log lines of the process that carry a traceback (there must be none)."""
    return [line[:300] for line in log_text.splitlines() if _TRACEBACK.search(line)]


def fuzz_all(base_url: str, port: int, *, scale: int, seed: int,
             progress: Callable[[str], None] = lambda _: None) -> Tally:
    """One round of every source; `scale` sets the examples per operation and mode."""
    tally = Tally()
    for name, run in _rounds(base_url, port, tally, scale, seed):
        run()
        progress(f"{name}: {tally.requests} requests so far")
    return tally


def _rounds(base_url: str, port: int, tally: Tally, scale: int,
            seed: int) -> Iterator[tuple[str, Callable[[], None]]]:
    yield "schemathesis", lambda: run_schemathesis(base_url, tally, examples=scale, seed=seed)
    yield "stateful", lambda: run_stateful(base_url, tally, scenarios=max(5, scale // 2),
                                           seed=seed)
    yield "webhooks", lambda: run_webhooks(base_url, tally, examples=scale * 4, seed=seed)

    yield "raw", lambda: run_raw(port, tally, examples=scale * 20, seed=seed)


@dataclass
class FuzzRun:
    backend: str
    tally: Tally
    tracebacks: list[str]
    log_lines: int
    seconds: float

    def report(self) -> str:
        return (f"[{self.backend}] {self.tally.summary()}; tracebacks in the log: "
                f"{len(self.tracebacks)} ({self.log_lines} log lines); {self.seconds:.0f} s")


def fuzz_process(workdir: Path, database_url: str, *, backend: str, scale: int,
                 min_requests: int = 0, seed: int = 0,
                 progress: Callable[[str], None] = lambda _: None) -> FuzzRun:
    """Start `python bot.py` on `database_url`, fuzz it round after round (a new seed each)
    until `min_requests` were sent, stop it, and read its log."""
    port = free_port()
    log_path = workdir / f"fuzz-{backend}.log"
    started = time.monotonic()
    tally = Tally()
    with log_path.open("w") as log:
        process = start_bot(workdir, fuzz_env(workdir, port, database_url), log=log)
        try:
            wait_until_ready(port, process)
            base_url = f"http://127.0.0.1:{port}"
            round_seed = seed
            while True:
                for name, run in _rounds(base_url, port, tally, scale, round_seed):
                    run()
                    progress(f"[{backend}] {name}: {tally.requests} requests")
                round_seed += 1
                if tally.requests >= min_requests:
                    break
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    text = log_path.read_text()
    return FuzzRun(backend, tally, tracebacks(text), len(text.splitlines()),
                   time.monotonic() - started)
