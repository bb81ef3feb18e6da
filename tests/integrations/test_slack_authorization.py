"""Who may mutate from Slack: the global allow-list, per-runbook lists, user groups (cached),
and failing closed when Slack cannot say who is in a group."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from integrations_support import (
    ALLOWED_USER,
    GROUP_MEMBER,
    INCIDENT_ID,
    ONCALL_GROUP,
    FakeClock,
    MemoryAudit,
    MemoryReader,
    MemorySink,
    pagerduty_settings,
    slack_headers,
    slack_settings,
    slash_body,
    summary,
)

from responder.ingest.chatops import ChatOps
from responder.integrations.base import AuditOutcome
from responder.integrations.slack.notifier import build_web_client
from responder.settings import ChatOpsAllowList
from responder_dev.fakes.slack_api import FakeSlack

Client = TestClient[Any, Any]
SPECIAL = "U0SPECIAL"
OTHER_INCIDENT = "7e1c2b3a-0000-4000-8000-000000000001"


@pytest.fixture
async def client(
    fake_slack: FakeSlack, sink: MemorySink, audit: MemoryAudit, clock: FakeClock, tls_cert: Any
) -> AsyncIterator[Client]:
    settings = slack_settings(
        fake_slack.url,
        runbook_allow={"database_performance": ChatOpsAllowList(users=frozenset({SPECIAL}))},
    )
    reader = MemoryReader([summary(), summary(OTHER_INCIDENT, runbook="database_performance")])
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
    test_client = TestClient(TestServer(app, host="127.0.0.1"))
    await test_client.start_server()
    yield test_client
    await ops.close()
    await test_client.close()


async def command(client: Client, clock: FakeClock, text: str, user: str, trigger: str) -> str:
    body = slash_body(text, user_id=user, trigger_id=trigger)
    response = await client.post(
        "/v1/slack/commands", data=body, headers=slack_headers(body, int(clock.now()))
    )
    assert response.status == 200
    text_out: str = (await response.json())["text"]
    return text_out


async def test_a_runbook_list_replaces_the_global_one(
    client: Client, clock: FakeClock, sink: MemorySink, audit: MemoryAudit
) -> None:
    refused = await command(client, clock, f"ack {OTHER_INCIDENT}", ALLOWED_USER, "t1")
    assert "runbook database_performance" in refused
    accepted = await command(client, clock, f"ack {OTHER_INCIDENT}", SPECIAL, "t2")
    assert "accepted" in accepted
    refused_elsewhere = await command(client, clock, f"ack {INCIDENT_ID}", SPECIAL, "t3")
    assert "Refused" in refused_elsewhere
    assert [c.actor.id for c in sink.commands] == [SPECIAL]
    assert [r.outcome for r in audit.records].count(AuditOutcome.REFUSED_AUTHORIZATION) == 2


async def test_group_membership_is_cached(
    client: Client, clock: FakeClock, fake_slack: FakeSlack, sink: MemorySink
) -> None:
    for i in range(3):
        assert "accepted" in await command(
            client, clock, f"ack {INCIDENT_ID}", GROUP_MEMBER, f"g{i}"
        )
    assert len(fake_slack.calls_to("usergroups.users.list")) == 1
    assert fake_slack.calls_to("usergroups.users.list")[0].body["usergroup"] == ONCALL_GROUP
    assert len(sink.commands) == 3


async def test_group_lookup_failure_fails_closed(
    client: Client, clock: FakeClock, fake_slack: FakeSlack, sink: MemorySink
) -> None:
    fake_slack.fail_next("usergroups.users.list", error="missing_scope")
    answer = await command(client, clock, f"ack {INCIDENT_ID}", GROUP_MEMBER, "f1")
    assert "could not check your user groups" in answer
    assert sink.commands == []
