"""The application served as `python bot.py` serves it (EdgeAppRunner), for the test client."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from edge.server import EdgeAppRunner, EdgeLimits


class EdgeTestServer(TestServer):
    def __init__(self, app: web.Application, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return EdgeAppRunner(self.app, limits=self.limits, **kwargs)
