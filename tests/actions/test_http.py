"""http.request against a real local HTTP server: allow-list, secrets, retries, dry-run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from responder.actions.base import ActionContext
from responder.actions.guards import Guards
from responder.actions.http import HttpClient, HttpRequest
from responder.actions.params import HTTPRequestParams
from responder.actions.retry import RetryPolicy
from responder.errors import PermanentError, TemporaryError
from responder.models.target import Target
from responder.settings import ActionsSettings

TARGET = Target(namespace="payments", kind="http", name="hub")
SECRET = "s3cr3t-value-never-logged"


@pytest.fixture
async def action(
    recorder: Any, make_settings: Callable[..., ActionsSettings], policy: RetryPolicy
) -> AsyncIterator[HttpRequest]:
    settings = make_settings(
        http_base_urls={"hub": recorder.url + "/admin"},
        http_secrets={"hub-token": SecretStr(SECRET)},
    )
    http = HttpClient(settings)
    yield HttpRequest(http, settings, Guards.from_settings(settings), policy)
    await http.close()


def params(**fields: Any) -> HTTPRequestParams:
    base: dict[str, Any] = {
        "base": "hub",
        "path": "/drain",
        "headers": {"Authorization": {"secret": "hub-token"}},
    }
    base.update(fields)
    return HTTPRequestParams.model_validate(base)


async def test_request_sent_with_secret_header_and_idempotency_key(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    ctx = make_ctx()
    with structlog.testing.capture_logs() as logs:
        result = await action.run(ctx, TARGET, params(body={"reason": "incident"}))
    assert SECRET not in repr(logs)
    assert result.changed
    assert result.after == {"status": 200}
    [sent] = recorder.requests
    assert sent["method"] == "POST"
    assert sent["path"] == "/admin/drain"
    assert sent["headers"]["Authorization"] == SECRET
    assert sent["headers"]["Idempotency-Key"] == ctx.key
    assert json.loads(sent["body"]) == {"reason": "incident"}
    assert SECRET not in result.model_dump_json()


async def test_500_then_200_is_retried(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    recorder.script = [500, 503]
    result = await action.run(make_ctx(), TARGET, params())
    assert result.data["tries"] == 3
    assert len(recorder.requests) == 3
    assert {r["headers"]["Idempotency-Key"] for r in recorder.requests} == {result.key}


async def test_429_honours_retry_after(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    recorder.script = [(429, {"Retry-After": "0"})]
    result = await action.run(make_ctx(), TARGET, params())
    assert result.data["tries"] == 2


async def test_persistent_500_gives_up_as_temporary(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    recorder.script = [500] * 10
    with pytest.raises(TemporaryError, match="gave up after 4 tries"):
        await action.run(make_ctx(), TARGET, params())
    assert len(recorder.requests) == 4


@pytest.mark.parametrize("status", [401, 403, 404, 422])
async def test_client_errors_are_permanent_and_not_retried(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext], status: int
) -> None:
    recorder.script = [status]
    with pytest.raises(PermanentError):
        await action.run(make_ctx(), TARGET, params())
    assert len(recorder.requests) == 1


async def test_expected_status_list(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    recorder.script = [202]
    result = await action.run(make_ctx(), TARGET, params(expect_status=[202]))
    assert result.after == {"status": 202}


async def test_dry_run_sends_nothing_and_hides_secrets(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    result = await action.run(make_ctx(dry_run=True), TARGET, params())
    assert recorder.requests == []
    assert result.dry_run
    assert not result.changed
    assert result.data["request"]["url"] == recorder.url + "/admin/drain"
    assert result.data["request"]["headers"]["Authorization"] == "<secret>"
    assert SECRET not in result.model_dump_json()


async def test_unknown_base_or_namespace_sends_nothing(
    action: HttpRequest, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    with pytest.raises(PermanentError, match="no base URL named"):
        await action.run(make_ctx(), TARGET, params(base="other"))
    with pytest.raises(PermanentError, match="allowed_namespaces"):
        await action.run(make_ctx(), Target(namespace="kube-system", name="x"), params())
    assert recorder.requests == []


async def test_server_down_is_temporary(
    make_settings: Callable[..., ActionsSettings],
    policy: RetryPolicy,
    make_ctx: Callable[..., ActionContext],
) -> None:
    from responder_dev.stack.process import free_port

    settings = make_settings(http_base_urls={"hub": f"http://127.0.0.1:{free_port()}"})
    http = HttpClient(settings)
    try:
        action = HttpRequest(http, settings, Guards.from_settings(settings), policy)
        with pytest.raises(TemporaryError, match="gave up"):
            await action.run(make_ctx(), TARGET, params(headers={}))
    finally:
        await http.close()


async def test_a_hanging_server_times_out_on_every_try(
    make_settings: Callable[..., ActionsSettings],
    policy: RetryPolicy,
    make_ctx: Callable[..., ActionContext],
) -> None:
    import asyncio
    import time

    from aiohttp import web

    never = asyncio.Event()
    hits: list[int] = []

    async def hang(_: web.Request) -> web.Response:
        hits.append(1)
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/drain", hang)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    settings = make_settings(
        http_base_urls={"hub": f"http://{host}:{port}"}, call_timeout_s=0.2, retry_attempts=2
    )
    http = HttpClient(settings)
    try:
        action = HttpRequest(
            http, settings, Guards.from_settings(settings), RetryPolicy(2, 0.01, 0.05)
        )
        started = time.monotonic()
        with pytest.raises(TemporaryError, match="gave up after 2 tries"):
            await action.run(make_ctx(), TARGET, params(headers={}))
        assert time.monotonic() - started < 2.0
        assert len(hits) == 2
    finally:
        never.set()
        await http.close()
        await runner.cleanup()
