"""Deployment files, checked by parsing them (no Docker engine here): Dockerfile, .dockerignore,
compose.yaml, the Prometheus config and the systemd unit."""

from __future__ import annotations

import asyncio
import configparser
import fnmatch
import json
import os
import re
import shlex
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

import api
import bot
from store import migrate
from store.database import Database
from tests.support.compose import (
    MissingVariableError,
    container_environment,
    image_environment,
    interpolate,
    parse_dotenv,
)
from tests.support.doc_support import ROOT, doc, env_file_variables, read
from tests.support.dockerfile import Instruction, _json_array, parse_dockerfile
from utils.config import Settings

ClientFactory = Callable[..., Any]
# Variables compose.yaml interpolates for itself (never read by the bot); each is explained in
# docs/operations.md.
COMPOSE_VARIABLES = frozenset({"POSTGRES_PASSWORD"})
# Top-level folders with Python files that do not run in production.
NOT_RUNTIME = frozenset({"tests", "bench", "docs", "deploy", "harness"})


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(read(ROOT / "Dockerfile"))


def only(instructions: list[Instruction], name: str) -> Instruction:
    found = [item for item in instructions if item.name == name]
    assert len(found) == 1, f"expected one {name}, found {len(found)}"
    return found[0]


def healthcheck_command(instructions: list[Instruction]) -> list[str]:
    _, rest = only(instructions, "HEALTHCHECK").flags_and_rest()
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD"
    argv = _json_array(command)
    assert argv is not None, "HEALTHCHECK CMD must be in exec form"
    return argv


def test_the_parser_handles_continuations_comments_and_both_forms() -> None:
    parsed = parse_dockerfile('# syntax=docker/dockerfile:1\nFROM a\n\n# why\nRUN x \\\n'
                              '    # dropped\n    && y\nCMD ["p", "q"]\nCMD ["p", \'q\']\n')
    assert [item.name for item in parsed] == ["FROM", "RUN", "CMD", "CMD"]
    assert parsed[1].arguments == "x && y"
    assert parsed[1].comments == ["why"]
    assert parsed[2].exec_form == ["p", "q"]
    assert parsed[3].exec_form is None  # not JSON: Docker would run it through a shell


def test_dockerfile_base_user_and_runtime(dockerfile: list[Instruction]) -> None:
    assert dockerfile[0].name == "FROM"
    assert dockerfile[0].arguments == "python:3.11-slim"
    user = [item for item in dockerfile if item.name == "USER"][-1]
    assert user.arguments.split(":")[0] not in ("root", "0")
    assert only(dockerfile, "STOPSIGNAL").arguments == "SIGTERM"
    assert only(dockerfile, "CMD").exec_form == ["python", "bot.py"]
    assert only(dockerfile, "EXPOSE").arguments == "8080"
    assert only(dockerfile, "VOLUME").exec_form == ["/app/data"]
    installs = [item.arguments for item in dockerfile if item.name == "RUN"
                and "pip install" in item.arguments]
    assert any("--no-cache-dir" in command and "-r requirements.txt" in command
               for command in installs)
    # The user is switched before anything runs, after everything is installed.
    names = [item.name for item in dockerfile]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name in ("RUN", "COPY"))


def test_listening_everywhere_comes_with_an_auth_warning(dockerfile: list[Instruction]) -> None:
    env = [item for item in dockerfile if item.name == "ENV" and "API_HOST=" in item.arguments]
    assert len(env) == 1
    assert "API_HOST=0.0.0.0" in env[0].arguments.split()
    explanation = " ".join(env[0].comments).lower()
    assert "authentication" in explanation
    assert "api_key" in explanation


def runtime_sources() -> set[str]:
    """Top-level modules and packages that run in production, plus their Alembic config."""
    sources = {path.name for path in ROOT.glob("*.py")} | {"alembic.ini"}
    for path in ROOT.iterdir():
        if path.is_dir() and not path.name.startswith(".") and path.name not in NOT_RUNTIME \
                and next(path.rglob("*.py"), None) is not None:
            sources.add(path.name)
    return sources


def test_dockerfile_copies_exactly_what_runs(dockerfile: list[Instruction]) -> None:
    copied: set[str] = set()
    for item in dockerfile:
        if item.name == "COPY":
            _, rest = item.flags_and_rest()
            copied |= {source.rstrip("/") for source in shlex.split(rest)[:-1]}
    assert runtime_sources() <= copied, "a new top-level package must be copied into the image"
    assert not copied & NOT_RUNTIME
    assert "." not in copied  # never the whole context


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    patterns = [line.strip() for line in read(ROOT / ".dockerignore").splitlines()
                if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern.removeprefix("**/"))
                   or fnmatch.fnmatch(path, pattern)
                   or path.startswith(pattern.rstrip("/") + "/")
                   or fnmatch.fnmatch(Path(path).name, pattern.removeprefix("**/"))
                   for pattern in patterns)

    for path in (".git/config", ".venv/bin/python", "data/bot.db", ".env", ".env.production",
                 "credentials/sa.json", "service-key.json", "tls.pem",
                 "utils/__pycache__/config.cpython-311.pyc", ".pytest_cache/v"):
        assert ignored(path), path
    for path in ("bot.py", "requirements.txt", "constraints.txt", "utils/config.py"):
        assert not ignored(path), path


async def test_healthcheck_command_passes_on_the_app_and_fails_without_it(
        dockerfile: list[Instruction], aiohttp_client: ClientFactory,
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    argv = healthcheck_command(dockerfile)
    assert argv[0] == "python"
    assert "urllib" in argv[-1]
    path = re.search(r"https?://[^/'\"]+(/[\w/-]*)", argv[-1])
    assert path is not None
    assert path.group(1) == "/health"
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        client = await aiohttp_client(api.create_app(make_settings(), database=database))
        assert (await client.get(path.group(1))).status == 200
        assert await run_healthcheck(argv, client.port) == 0
    finally:
        await database.dispose()
    assert await run_healthcheck(argv, closed_port()) != 0


async def run_healthcheck(argv: list[str], port: int) -> int:
    environment = {"PATH": os.environ.get("PATH", ""), "API_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv[1:], env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(process.wait(), 30)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- compose.yaml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(read(ROOT / "compose.yaml"))
    return loaded


# .env as docs/operations.md has the operator make it: .env.example copied, then
# POSTGRES_PASSWORD appended (the hex of `openssl rand -hex 32`).
GUIDE_POSTGRES_PASSWORD = "0123456789abcdef" * 4


# The guide's line for it, the same in docs/operations.md and in compose.yaml's comment.
POSTGRES_PASSWORD_LINE = 'echo "POSTGRES_PASSWORD=$(openssl rand -hex 32)" >> .env'


def copied_dotenv(*extra_lines: str, password: str = GUIDE_POSTGRES_PASSWORD) -> str:
    return "\n".join([read(ROOT / ".env.example"), *extra_lines,
                      f"POSTGRES_PASSWORD={password}", ""])


def bot_container_environment(compose: dict[str, Any], dockerfile: list[Instruction],
                              dotenv_text: str, exported: dict[str, str] | None = None,
                              ) -> dict[str, str]:
    """The bot container's environment with this project's .env (Compose's rules)."""
    return container_environment(
        compose["services"]["bot"], image=image_environment(dockerfile),
        env_files={".env": dotenv_text}, exported=exported or {}, dotenv=parse_dotenv(dotenv_text))


def test_compose_services_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"bot", "postgres", "redis", "prometheus"} <= services.keys()
    bot_service = services["bot"]
    assert bot_service["build"] in (".", {"context": "."})
    env_files = bot_service["env_file"]
    assert ".env" in ([env_files] if isinstance(env_files, str) else env_files)
    for dependency in ("postgres", "redis"):
        assert bot_service["depends_on"][dependency] == {"condition": "service_healthy"}
        assert "test" in services[dependency]["healthcheck"]
    assert str(services["postgres"]["image"]).startswith("postgres:15")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert str(services["redis"]["image"]).startswith("redis:7")
    volume = services["postgres"]["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data"
    assert volume[0] in compose["volumes"]
    grace = int(str(bot_service["stop_grace_period"]).removesuffix("s"))
    assert grace > bot.SHUTDOWN_GRACE_SECONDS


def test_compose_gives_the_bot_only_settings_that_validate(
        compose: dict[str, Any], make_settings: Callable[..., Settings]) -> None:
    environment = compose["services"]["bot"]["environment"]
    known = {name.upper() for name in Settings.model_fields} \
        | env_file_variables(read(ROOT / ".env.example"))
    assert not set(environment) - known
    placeholders = {"POSTGRES_PASSWORD": GUIDE_POSTGRES_PASSWORD}
    values = {name: interpolate(str(value), placeholders) for name, value in environment.items()}
    assert values["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert values["RATE_LIMIT_BACKEND"] == "redis"
    assert values["REDIS_URL"].startswith("redis://")
    values["APP_ENV"] = "development"  # production would also want every secret
    # Listening on 0.0.0.0 needs API authentication: the guide has .env set API_KEY.
    values["API_KEY"] = "k" * 40
    settings = make_settings(**{name.lower(): value for name, value in values.items()})
    assert settings.problems() == []


def settings_from_environment(monkeypatch: pytest.MonkeyPatch,
                              environment: dict[str, str]) -> Settings:
    """Settings as the bot reads them from a process environment (and nothing else)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def bot_container_port(compose: dict[str, Any]) -> str:
    """The container side of the bot's published port (what Prometheus scrapes, too)."""
    return str(compose["services"]["bot"]["ports"][0]).rsplit(":", 1)[1]


@pytest.mark.parametrize("edited", ["", "API_HOST=127.0.0.1", "API_HOST=localhost\nAPI_PORT=9000"])
def test_compose_bot_listens_where_the_published_port_and_prometheus_reach_it(
        compose: dict[str, Any], dockerfile: list[Instruction], monkeypatch: pytest.MonkeyPatch,
        edited: str) -> None:
    """.env.example keeps API_HOST=127.0.0.1, right for `python bot.py` on a host. Compose's
    env_file beats the image's ENV, so compose.yaml's `environment:` (which beats env_file) must
    set where the bot listens in the container, whatever the copied .env says."""
    assert Settings.model_fields["api_host"].default == "127.0.0.1"
    assert parse_dotenv(read(ROOT / ".env.example")).get("API_HOST", "127.0.0.1") \
        in ("127.0.0.1", "localhost", "::1")
    environment = bot_container_environment(compose, dockerfile, copied_dotenv(edited))
    assert environment["API_HOST"] == "0.0.0.0"
    assert environment["API_PORT"] == bot_container_port(compose)
    settings = settings_from_environment(monkeypatch, environment)
    assert settings.api_host == "0.0.0.0"
    assert settings.api_port == int(bot_container_port(compose))


def test_compose_runs_production_unless_the_operator_says_otherwise(
        compose: dict[str, Any], dockerfile: list[Instruction],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`${APP_ENV:-production}` is filled from the shell, then from the project's .env: a .env
    copied from .env.example must leave APP_ENV unset, so the documented deployment is
    production (strict secrets, HSTS and CSP, JSON logs); setting it is a deliberate choice."""
    environment = bot_container_environment(compose, dockerfile, copied_dotenv())
    assert environment["APP_ENV"] == "production"
    settings = settings_from_environment(monkeypatch, environment)
    assert settings.is_production
    assert settings.strict_security
    assert settings.effective_log_format == "json"
    blank = bot_container_environment(compose, dockerfile, copied_dotenv("APP_ENV="))
    assert blank["APP_ENV"] == "production"
    chosen = bot_container_environment(compose, dockerfile, copied_dotenv("APP_ENV=development"))
    assert chosen["APP_ENV"] == "development"
    from_shell = bot_container_environment(compose, dockerfile, copied_dotenv(),
                                           exported={"APP_ENV": "development"})
    assert from_shell["APP_ENV"] == "development"
    operations = doc("operations.md")
    assert "`${APP_ENV:-production}`" in operations  # the docs say how it works


def test_the_guide_makes_a_postgres_password_that_needs_no_url_escaping(
        compose: dict[str, Any], dockerfile: list[Instruction]) -> None:
    """Compose places POSTGRES_PASSWORD into DATABASE_URL unescaped, so the docs and
    compose.yaml's comment generate it with `openssl rand -hex` and say why."""
    operations = doc("operations.md")
    assert POSTGRES_PASSWORD_LINE in operations
    assert POSTGRES_PASSWORD_LINE in read(ROOT / "compose.yaml")
    assert "URL" in operations[operations.index(POSTGRES_PASSWORD_LINE):]
    environment = bot_container_environment(compose, dockerfile, copied_dotenv())
    assert make_url(environment["DATABASE_URL"]).password == GUIDE_POSTGRES_PASSWORD
    # Why: URL syntax characters in it would change what the URL says.
    unsafe = "p@ss/w#rd"
    mangled = bot_container_environment(compose, dockerfile, copied_dotenv(password=unsafe))
    assert make_url(mangled["DATABASE_URL"]).password != unsafe
    with pytest.raises(MissingVariableError, match="POSTGRES_PASSWORD"):
        bot_container_environment(compose, dockerfile, read(ROOT / ".env.example"))


def test_compose_interpolates_only_known_variables(compose: dict[str, Any]) -> None:
    text = read(ROOT / "compose.yaml")
    used = set(re.findall(r"\$\{(\w+)", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#"))))
    known = {name.upper() for name in Settings.model_fields} \
        | env_file_variables(read(ROOT / ".env.example")) | COMPOSE_VARIABLES
    assert used
    assert not used - known
    operations = doc("operations.md")
    assert all(f"`{name}`" in operations for name in COMPOSE_VARIABLES)


def test_prometheus_reads_the_key_from_a_compose_secret(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    image_version = re.search(r":v(\d+)\.(\d+)", prometheus["image"])
    assert image_version is not None
    assert tuple(map(int, image_version.groups())) >= (2, 55)  # http_headers in scrape configs
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in prometheus["volumes"]}
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    (secret,) = prometheus["secrets"]
    assert set(compose["secrets"][secret]) == {"file"}  # a file, never an inline value
    assert compose["secrets"][secret]["file"].startswith("./deploy/secrets/")

    config = yaml.safe_load(read(ROOT / "deploy" / "prometheus" / "prometheus.yml"))
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "community-bot"]
    assert job["metrics_path"] == "/metrics"
    assert job["http_headers"] == {"X-Api-Key": {"files": [f"/run/secrets/{secret}"]}}
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == [f"bot:{compose['services']['bot']['ports'][0].rsplit(':', 1)[1]}"]


GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "community-bot.json"
# Labels Prometheus adds to every scraped series (the app never serves them).
TARGET_LABELS = frozenset({"instance", "job"})


def test_compose_runs_grafana_provisioned_from_deploy_grafana(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana-oss:\d+\.\d+\.\d+", grafana["image"])  # pinned
    mounts = {volume.split(":")[1]: volume.split(":") for volume in grafana["volumes"]}
    provisioning = mounts["/etc/grafana/provisioning"]
    dashboards = mounts["/etc/grafana/dashboards"]
    assert provisioning[::2] == ["./deploy/grafana/provisioning", "ro"]
    assert dashboards[::2] == ["./deploy/grafana/dashboards", "ro"]
    assert mounts["/var/lib/grafana"][0] in compose["volumes"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]  # loopback only, like the others
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_started"}}
    environment = grafana["environment"]
    (secret,) = grafana["secrets"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == f"/run/secrets/{secret}"
    assert compose["secrets"][secret]["file"].startswith("./deploy/secrets/")
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment  # never an inline password
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    home = environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == "/etc/grafana/dashboards/" + DASHBOARD.name

    datasources = yaml.safe_load(read(GRAFANA / "provisioning" / "datasources" /
                                      "prometheus.yml"))
    (source,) = datasources["datasources"]
    port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{port}"
    assert source["type"] == "prometheus"
    providers = yaml.safe_load(read(GRAFANA / "provisioning" / "dashboards" /
                                    "community-bot.yml"))
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    dashboard = json.loads(read(DASHBOARD))
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert uids == {source["uid"]}


def dashboard_queries() -> dict[str, list[str]]:
    """Panel title -> its PromQL expressions."""
    dashboard = json.loads(read(DASHBOARD))
    return {panel["title"]: [target["expr"] for target in panel["targets"]]
            for panel in dashboard["panels"]}


def selectors(expression: str) -> list[tuple[str, set[str]]]:
    """Each `metric{label="...", ...}` of an expression: the metric and its label names (the
    dashboard writes every selector with braces, so each metric name is followed by one)."""
    found = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expression):
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(2)))
        found.append((match.group(1), labels))
    return found


def test_dashboard_has_the_status_page_panels() -> None:
    queries = dashboard_queries()
    expressions = " ".join(expr for exprs in queries.values() for expr in exprs)
    for needed in ("http_requests_total", "http_request_duration_seconds_bucket",
                   "outbox_entries", "discord_gateway_latency_seconds", "discord_guilds",
                   "rate_limit_refusals", "webhook_deliveries_total"):
        assert needed in expressions, needed
    assert "histogram_quantile(0.95" in expressions
    for status_class in ("4xx", "429", "5xx"):
        assert status_class in expressions
    assert all(selectors(expr) for exprs in queries.values() for expr in exprs)


async def test_every_metric_the_dashboard_queries_is_served(
        aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
        tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await migrate.upgrade_async(url)  # so outbox_entries has its samples and labels
    database = Database(url)
    try:
        client = await aiohttp_client(api.create_app(
            make_settings(api_key="metrics-key-0123456789abcdef", webhooks_enabled="founder"),
            database=database))
        await client.get("/health")
        await client.post("/webhooks/founder", data=b"{}",
                          headers={"Content-Type": "application/json"})
        response = await client.get("/metrics",
                                    headers={"X-Api-Key": "metrics-key-0123456789abcdef"})
        assert response.status == 200
        text = await response.text()
    finally:
        await database.dispose()
    served: dict[str, set[str]] = {}  # sample (or family) name -> its label names
    for family in text_string_to_metric_families(text):
        served.setdefault(family.name, set())
        for sample in family.samples:
            served.setdefault(sample.name, set()).update(sample.labels)
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    missing, wrong_labels = [], []
    for title, expressions in dashboard_queries().items():
        for expression in expressions:
            for metric, labels in selectors(expression):
                if metric not in served and metric not in families:
                    missing.append(f"{title}: {metric}")
                    continue
                known = served.get(metric, set())
                if known and labels - known - TARGET_LABELS:
                    wrong_labels.append(f"{title}: {metric} {labels - known - TARGET_LABELS}")
    assert not missing, "the dashboard queries metrics /metrics does not serve"
    assert not wrong_labels


# --- The systemd unit ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string(read(ROOT / "deploy" / "systemd" / "community-bot.service"))
    return parser


def test_systemd_unit_runs_the_bot_as_a_service_user(unit: configparser.ConfigParser) -> None:
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    executable, script = shlex.split(service["ExecStart"])
    assert executable.endswith("/.venv/bin/python")
    assert script == "bot.py"
    assert executable.startswith(service["WorkingDirectory"] + "/")
    assert service["User"] not in ("root", "0")
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"].startswith("/etc/")
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > bot.SHUTDOWN_GRACE_SECONDS
    assert service["RestartPreventExitStatus"] == str(bot.EXIT_CONFIG_ERROR)


def test_systemd_unit_is_hardened(unit: configparser.ConfigParser) -> None:
    service = unit["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"].split() == [f"{service['WorkingDirectory']}/data"]
    assert service["CapabilityBoundingSet"] == ""
