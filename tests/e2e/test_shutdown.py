"""Graceful stop: the runner as bot.py configures it lets in-flight requests finish."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web

import api
import bot
from harness.process import free_port
from store.database import Database
from utils.config import Settings


async def test_in_flight_request_finishes_and_new_ones_are_refused(
        make_settings: Callable[..., Settings], database: Database) -> None:
    entered = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await asyncio.sleep(0.5)
        return web.json_response({"finished": True})

    app = api.create_app(make_settings(), database=database)
    app.router.add_get("/test/slow", slow)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=bot.SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/test/slow"))
        await entered.wait()
        cleanup = asyncio.create_task(runner.cleanup())
        await asyncio.sleep(0.1)
        try:
            async with aiohttp.ClientSession() as other:
                await other.get(f"http://127.0.0.1:{port}/health")
            refused = False
        except aiohttp.ClientConnectionError:
            refused = True
        response = await in_flight
        assert response.status == 200
        assert await response.json() == {"finished": True}
        await cleanup
    assert refused, "a stopping server must not accept new connections"
