"""A MuseAroo engine's test-generation endpoint for the probe tests, on loopback.

It answers as the probe contract says (``POST /v1/generate/test`` -> ``success``,
``confidence``, ``engine``, ``duration_ms``) with what the test chose, records each call
(path, body, the local and peer addresses), and plays latency on an injected monotonic
clock so thresholds are tested without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class FakeMonotonic:
    """The probe's clock: only the engine moves it (by the latency it plays)."""

    at: float = 1000.0

    def __call__(self) -> float:
        return self.at


@dataclass
class Answer:
    success: Any = True
    confidence: Any = 0.93
    status: int = 200
    takes_s: float = 0.01
    """Latency played on the fake clock."""
    real_delay_s: float = 0.0
    body: Any = None
    """Sent instead of the contract's answer when set."""


@dataclass
class Engine:
    """A MuseAroo engine's test-generation endpoint, as the probe contract defines it."""

    clock: FakeMonotonic
    host: str = "127.0.0.1"
    port: int = 0
    answers: list[Answer] = field(default_factory=lambda: [Answer()])
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            {
                "method": request.method,
                "path": request.path,
                "body": await request.json(),
                "local": request.transport.get_extra_info("sockname")[0]
                if request.transport
                else None,
                "peer": request.remote,
            }
        )
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if answer.real_delay_s:
            await asyncio.sleep(answer.real_delay_s)
        self.clock.at += answer.takes_s
        body = answer.body
        if body is None:
            body = {
                "success": answer.success,
                "confidence": answer.confidence,
                "engine": "drummaroo",
                "duration_ms": 1.0,  # the engine's own figure: never the measured latency
            }
        return web.json_response(body, status=answer.status)


async def serve_engine(engine: Engine) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/v1/generate/test", engine.handle)
    app.router.add_post("/custom/probe", engine.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, engine.host, engine.port)
    await site.start()
    engine.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner


@pytest.fixture
def probe_clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def probe_engine(probe_clock: FakeMonotonic) -> AsyncIterator[Engine]:
    """An engine on 127.0.0.1 answering healthy until the test says otherwise."""
    server = Engine(probe_clock)
    runner = await serve_engine(server)
    try:
        yield server
    finally:
        await runner.cleanup()
