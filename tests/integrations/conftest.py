"""Fixtures for the integrations: the local Slack and PagerDuty, settings pointing at them,
an injectable clock, and in-memory sinks for commands and audit records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from integrations_support import (
    BOT_TOKEN,
    GROUP_MEMBER,
    ONCALL_GROUP,
    OTHER_ROUTING_KEY,
    ROUTING_KEY,
    FakeClock,
    MemoryAudit,
    MemoryReader,
    MemorySink,
    pagerduty_settings,
    slack_settings,
    summary,
)

from responder.ingest.chatops import ChatOps
from responder.integrations.slack.notifier import build_web_client
from responder_dev.fakes.http import self_signed_cert
from responder_dev.fakes.pagerduty_events import FakePagerDuty
from responder_dev.fakes.slack_api import FakeSlack


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(token=BOT_TOKEN, user_groups={ONCALL_GROUP: [GROUP_MEMBER]})
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
async def fake_pd(tls_cert: tuple[Path, Path]) -> AsyncIterator[FakePagerDuty]:
    pd = FakePagerDuty(
        cert=tls_cert[0], key=tls_cert[1], routing_keys={ROUTING_KEY, OTHER_ROUTING_KEY}
    )
    await pd.start()
    yield pd
    await pd.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def audit() -> MemoryAudit:
    return MemoryAudit()


@pytest.fixture
def reader() -> MemoryReader:
    return MemoryReader([summary()])


@pytest.fixture
async def chatops(
    fake_slack: FakeSlack,
    sink: MemorySink,
    audit: MemoryAudit,
    reader: MemoryReader,
    clock: FakeClock,
    tls_cert: tuple[Path, Path],
) -> AsyncIterator[tuple[ChatOps, TestClient[Any, Any]]]:
    settings = slack_settings(fake_slack.url)
    ops = ChatOps(
        sink=sink,
        reader=reader,
        audit=audit,
        slack=settings,
        pagerduty=pagerduty_settings("https://127.0.0.1:9", tls_cert[0]),
        clock=clock,
        slack_client=build_web_client(settings),
    )
    app = web.Application()
    app.add_routes(ops.routes())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield ops, client
    await ops.close()
    await client.close()
