"""Fixtures for action tests: fresh settings and guards, a fixed clock, contexts, and a local
HTTP server that records every request it receives (to prove what did, or did not, go out)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from action_support import FixedClock, context_factory
from aiohttp import web

from responder.actions.base import ActionContext
from responder.actions.guards import Guards
from responder.actions.retry import RetryPolicy
from responder.settings import ActionsSettings


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def policy() -> RetryPolicy:
    """Fast retries: the behaviour is the same, the test does not wait seconds."""
    return RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05)


@pytest.fixture
def make_ctx(clock: FixedClock) -> Callable[..., ActionContext]:
    """Context for a new incident (unique id) unless ``incident_id`` is given."""
    return context_factory(clock, deadline_s=30)


def settings_for(**overrides: Any) -> ActionsSettings:
    base: dict[str, Any] = {
        "allowed_namespaces": ["payments", "test-*"],
        "call_timeout_s": 5.0,
        "retry_attempts": 4,
        "retry_base_s": 0.01,
        "retry_cap_s": 0.05,
    }
    base.update(overrides)
    return ActionsSettings(**base)


@pytest.fixture
def make_settings() -> Callable[..., ActionsSettings]:
    """Settings for actions: test namespaces allowed, fast retries; keyword overrides."""
    return settings_for


@pytest.fixture
def guards() -> Guards:
    return Guards.from_settings(settings_for())


@dataclass
class Recorder:
    """A real HTTP server on 127.0.0.1 that records requests and answers from a script."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: statuses to answer in order (then 200 forever); a tuple is (status, headers)
    script: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body": body.decode(),
            }
        )
        answer = self.script.pop(0) if self.script else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.json_response({"ok": status < 400}, status=status, headers=headers)


async def start_recorder(host: str = "127.0.0.1", port: int = 0) -> tuple[Recorder, web.AppRunner]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    recorder.url = f"http://{bound[0]}:{bound[1]}"
    return recorder, runner


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    server, runner = await start_recorder()
    yield server
    await runner.cleanup()
