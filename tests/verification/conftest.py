"""Fixtures for verification tests: a local HTTP server answering what each test says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from verification_support import HealthServer


@pytest.fixture
async def health_server() -> AsyncIterator[HealthServer]:
    server = HealthServer()

    async def status(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        return web.Response(status=int(request.match_info["code"]))

    async def moved(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        raise web.HTTPFound("/status/200")

    app = web.Application()
    app.router.add_get("/status/{code:[0-9]{3}}", status)
    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
