"""Redis, Prometheus and Alertmanager of the stack really answer, and do what the responder needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, web

from responder.errors import ConfigError
from responder_dev.stack.alertmanager import Alertmanager
from responder_dev.stack.process import free_port, port_open
from responder_dev.stack.prometheus import Prometheus
from responder_dev.stack.redis import Redis
from responder_dev.stack.service import State


async def test_redis_answers_a_real_client(redis_server: Redis) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        assert await client.ping()
        await client.set("stack:test", "v")
        assert await client.get("stack:test") == b"v"
    finally:
        await client.aclose()


def test_redis_start_is_idempotent_and_stop_closes_the_port(redis_server: Redis) -> None:
    pid = redis_server.pid()
    redis_server.start()
    assert redis_server.pid() == pid

    redis_server.stop()
    assert not port_open(redis_server.port)
    assert redis_server.status().state is State.STOPPED
    redis_server.stop()  # stopping a stopped server is a no-op

    redis_server.start()
    assert redis_server.status().state is State.READY
    assert redis_server.pid() != pid


async def _get_json(url: str) -> Any:
    async with ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


@pytest.fixture
async def metrics_target() -> AsyncIterator[int]:
    """A tiny /metrics endpoint on a free port, as the ingest service exposes."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text="stack_test_metric 42\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_prometheus_scrapes_a_configured_loopback_target(
    prometheus: Prometheus, metrics_target: int
) -> None:
    await asyncio.to_thread(
        prometheus.configure, scrape_targets={"stack-test": [f"127.0.0.1:{metrics_target}"]}
    )
    try:
        query = f"{prometheus.url}/api/v1/query?query=stack_test_metric"
        deadline = time.monotonic() + 30
        while True:
            result = (await _get_json(query))["data"]["result"]
            if result:
                break
            assert time.monotonic() < deadline, "prometheus never scraped the target"
            await asyncio.sleep(0.2)
        assert result[0]["metric"]["job"] == "stack-test"
        assert result[0]["value"][1] == "42"
    finally:
        await asyncio.to_thread(prometheus.configure, scrape_targets={})


@pytest.mark.parametrize("target", ["10.0.0.1:9100", "192.168.1.5:80", "example.com:80"])
def test_prometheus_refuses_targets_off_loopback(prometheus: Prometheus, target: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        prometheus.configure(scrape_targets={"bad": [target]})
    assert "bad" not in prometheus.config_file.read_text()
    assert prometheus.wiring.scrape_targets == {}


def test_prometheus_reports_a_config_it_rejects(prometheus: Prometheus, tmp_path: Path) -> None:
    rules = tmp_path / "broken.yml"
    rules.write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum(('}]}]\n")
    before = prometheus.config_file.read_text()
    with pytest.raises(ConfigError, match="rejected"):
        prometheus.configure(scrape_targets={}, rule_files=[str(rules)])
    # The running config stays, on disk too, so a restart still works.
    assert prometheus.config_file.read_text() == before
    prometheus.stop()
    prometheus.start()
    assert prometheus.status().state is State.READY


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, asyncio.Queue[tuple[str | None, dict[str, Any]]]]]:
    """A receiver on a free port recording (Authorization header, JSON body) of each POST."""
    received: asyncio.Queue[tuple[str | None, dict[str, Any]]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        received.put_nowait((request.headers.get("Authorization"), await request.json()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/alertmanager", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/v1/alertmanager", received
    finally:
        await runner.cleanup()


def _alert(name: str, *, resolved: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC)
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "namespace": "stack-test", "severity": "warning"},
        "annotations": {"summary": "stack test"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
    }
    if resolved:
        alert["endsAt"] = (now - timedelta(seconds=1)).isoformat()
    return alert


async def _delivery_of(
    received: asyncio.Queue[tuple[str | None, dict[str, Any]]],
    name: str,
    status: str,
    timeout_s: float = 30.0,
) -> tuple[str | None, dict[str, Any]]:
    """The next delivery of the group of alert ``name`` with ``status``. Alertmanager keeps
    the session's other alerts too and delivers their groups to whoever is configured now."""
    deadline = time.monotonic() + timeout_s
    while True:
        auth, payload = await asyncio.wait_for(
            received.get(), max(0.1, deadline - time.monotonic())
        )
        names = {alert["labels"]["alertname"] for alert in payload["alerts"]}
        if payload["status"] == status and names == {name}:
            return auth, payload


async def test_alertmanager_delivers_firing_and_resolved_alerts_with_bearer_auth(
    alertmanager: Alertmanager,
    webhook: tuple[str, asyncio.Queue[tuple[str | None, dict[str, Any]]]],
) -> None:
    url, received = webhook
    await asyncio.to_thread(alertmanager.configure, webhook_url=url, token="s3cret-token")
    name = f"StackTest{time.monotonic_ns()}"

    await asyncio.to_thread(alertmanager.post_alerts, [_alert(name)])
    auth, payload = await _delivery_of(received, name, "firing")
    assert auth == "Bearer s3cret-token"
    assert payload["version"] == "4"
    assert payload["alerts"][0]["labels"]["namespace"] == "stack-test"

    await asyncio.to_thread(alertmanager.post_alerts, [_alert(name, resolved=True)])
    _, payload = await _delivery_of(received, name, "resolved")
    assert payload["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


def test_alertmanager_keeps_the_token_private_and_refuses_remote_webhooks(
    alertmanager: Alertmanager,
) -> None:
    assert alertmanager.config_file.stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="loopback"):
        alertmanager.configure(webhook_url="http://192.168.0.10/hook", token="t")
    assert "192.168" not in alertmanager.config_file.read_text()
    assert "192.168" not in alertmanager.route.webhook_url


async def test_alertmanager_runs_alone_without_clustering(alertmanager: Alertmanager) -> None:
    status = await _get_json(f"{alertmanager.url}/api/v2/status")
    assert status["cluster"]["status"] == "disabled"


@pytest.mark.slow
async def test_prometheus_rule_reaches_the_webhook_through_alertmanager(
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    webhook: tuple[str, asyncio.Queue[tuple[str | None, dict[str, Any]]]],
    tmp_path: Path,
) -> None:
    """The stack's chain as the demo uses it: a rule fires in Prometheus, Alertmanager
    delivers it to the responder's webhook with the bearer token."""
    url, received = webhook
    name = f"StackChain{time.monotonic_ns()}"
    rules = tmp_path / "chain.yml"
    rules.write_text(
        f"groups: [{{name: chain, rules: [{{alert: {name}, expr: 'vector(1)', "
        "labels: {namespace: stack-test, severity: warning}}]}]\n"
    )
    await asyncio.to_thread(alertmanager.configure, webhook_url=url, token="chain-token")
    await asyncio.to_thread(
        prometheus.configure,
        scrape_targets={},
        alertmanager=f"127.0.0.1:{alertmanager.port}",
        rule_files=[str(rules)],
    )
    try:
        auth, _ = await _delivery_of(received, name, "firing")
        assert auth == "Bearer chain-token"
    finally:
        await asyncio.to_thread(prometheus.configure, scrape_targets={}, rule_files=[])
