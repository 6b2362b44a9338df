# syntax=docker/dockerfile:1
# The bot and its control API in one process. Build: docker build -t community-bot .
# Configuration comes from the environment (docs/configuration.md); compose.yaml shows a full
# deployment with PostgreSQL, Redis and Prometheus.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a fixed uid, so volume permissions are predictable.
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin bot

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the requirements change.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Only what runs (no tests, benchmarks, docs or deployment files). Owned by root, so the
# running user cannot modify its own code. pyproject.toml gives the version /status shows.
COPY alembic.ini bot.py api.py pyproject.toml ./
COPY cli/ cli/
COPY cogs/ cogs/
COPY command_kit/ command_kit/
COPY control/ control/
COPY delivery/ delivery/
COPY edge/ edge/
COPY knowledge/ knowledge/
COPY members/ members/
COPY migrations/ migrations/
COPY observability/ observability/
COPY store/ store/
COPY utils/ utils/
COPY webhooks/ webhooks/

# The default SQLite database lives in /app/data (DATABASE_URL=sqlite+aiosqlite:///./data/bot.db).
RUN mkdir -p /app/data && chown bot:bot /app/data
VOLUME ["/app/data"]

# Listen on every interface so the published port reaches the API. This exposes the control
# API beyond the container: configure API authentication (API_KEY, and SUPABASE_URL for
# dashboard users) whenever you publish the port. In production (APP_ENV=production) the bot
# refuses to start without it; in development it refuses a non-loopback address with no
# authentication unless ALLOW_UNAUTHENTICATED_API=1.
ENV API_HOST=0.0.0.0 \
    API_PORT=8080
EXPOSE 8080

USER 10001:10001

# Liveness from inside the container (the slim image has no curl): any answer but a 2xx, or no
# answer, is a failure.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT', '8080'), timeout=4)"]

# bot.py stops gracefully on SIGTERM: in-flight requests finish, the gateway closes, exit 0.
STOPSIGNAL SIGTERM
CMD ["python", "bot.py"]
