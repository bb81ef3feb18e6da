"""What the simulator's tests share: one call of the generation probe, timed by the caller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from responder_dev.demo.simulator import PROBE_PATH


async def probe(session: aiohttp.ClientSession, base: str) -> tuple[dict[str, Any], float]:
    """The probe contract's call: its JSON answer and the wall time it took (seconds)."""
    started = time.monotonic()
    async with session.post(base + PROBE_PATH, json={"complexity": 0.5, "style": "test"}) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    return body, time.monotonic() - started


async def faults(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(base + "/v1/faults") as r:
        assert r.status == 200
        answer: dict[str, Any] = await r.json()
        return answer


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll ``check`` until it holds; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(0.1)
