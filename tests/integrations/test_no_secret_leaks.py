"""No secret in logs, errors, audit records or commands (Alertmanager's AssertNotifyLeaksNoSecret).

Drives every path that logs or raises (success, 400, 429, bad auth, forged and
refused inbound requests) with the SDKs' own DEBUG logging on, then looks for the
bot token, signing secret, routing keys and webhook secrets in everything captured.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from integrations_support import (
    INCIDENT_ID,
    ROUTING_KEY,
    SECRETS,
    STRANGER,
    FakeClock,
    MemoryAudit,
    MemorySink,
    RecordingSleep,
    notification,
    pagerduty_settings,
    slack_headers,
    slack_settings,
    slash_body,
)

from responder.errors import ResponderError
from responder.ingest.chatops import ChatOps
from responder.integrations.pagerduty.events import (
    EventsClient,
    InMemoryPagerDutyStore,
    PagerDutyNotifier,
)
from responder.integrations.pagerduty.webhooks import sign
from responder.integrations.slack.notifier import InMemorySlackMessageStore, SlackNotifier
from responder.models.notifications import IncidentPhase
from responder_dev.fakes.pagerduty_events import FakePagerDuty
from responder_dev.fakes.slack_api import FakeSlack

Client = TestClient[Any, Any]


async def test_no_secret_reaches_logs_errors_or_audit(
    fake_slack: FakeSlack,
    fake_pd: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    chatops: tuple[ChatOps, Client],
    clock: FakeClock,
    sink: MemorySink,
    audit: MemoryAudit,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []

    # PagerDuty out: success, 429 then success, 400 (unknown key), then a bad-auth style 401
    pd_settings = pagerduty_settings(fake_pd.url, tls_cert[0])
    pd = PagerDutyNotifier(
        pd_settings, EventsClient(pd_settings, sleep=RecordingSleep()), InMemoryPagerDutyStore()
    )
    fake_pd.fail_next(429, retry_after=1)
    await pd.notify(notification(IncidentPhase.ESCALATED, 1))
    await pd.notify(notification(IncidentPhase.RESOLVED, 2))
    fake_pd.routing_keys.discard(ROUTING_KEY)
    try:
        await pd.notify(notification(IncidentPhase.ESCALATED, 3, incident_id="other-incident"))
    except ResponderError as exc:
        errors.append(exc)
    fake_pd.fail_next(401)
    try:
        await pd.notify(notification(IncidentPhase.ESCALATED, 4, incident_id="third-incident"))
    except ResponderError as exc:
        errors.append(exc)
    await pd.aclose()

    # Slack out: success, 429, ok:false, wrong token
    slack = SlackNotifier(
        slack_settings(fake_slack.url, rate_limit_retries=0), InMemorySlackMessageStore()
    )
    await slack.notify(notification(IncidentPhase.OPEN, 1))
    fake_slack.fail_next("chat.update", status=429, retry_after=1)
    for seq, channel in ((2, None), (3, "#nowhere")):
        try:
            await slack.notify(
                notification(
                    IncidentPhase.ESCALATED, seq, incident_id=f"inc-{seq}", slack_channel=channel
                )
            )
        except ResponderError as exc:
            errors.append(exc)
    try:
        await slack.notify(notification(IncidentPhase.ESCALATED, 2))
    except ResponderError as exc:
        errors.append(exc)

    # Inbound: accepted, forged, refused, PagerDuty bad and good signatures
    _, client = chatops
    now = int(clock.now())
    ok = slash_body(f"ack {INCIDENT_ID}", response_url=fake_slack.response_url())
    await client.post("/v1/slack/commands", data=ok, headers=slack_headers(ok, now))
    forged = slash_body("resolve " + INCIDENT_ID, trigger_id="t2")
    await client.post(
        "/v1/slack/commands",
        data=forged,
        headers={**slack_headers(forged, now), "X-Slack-Signature": "v0=" + "0" * 64},
    )
    refused = slash_body("resolve " + INCIDENT_ID, user_id=STRANGER, trigger_id="t3")
    await client.post("/v1/slack/commands", data=refused, headers=slack_headers(refused, now))
    body = (
        b'{"event": {"id": "E1", "event_type": "incident.resolved", "resource_type": "incident", "occurred_at": "2026-11-30T03:00:00Z", "agent": {"id": "P1", "type": "user_reference"}, "data": {"incident_key": "'
        + INCIDENT_ID.encode()
        + b'"}}}'
    )
    await client.post(
        "/v1/pagerduty",
        data=body,
        headers={"X-PagerDuty-Signature": sign(body, "wrong"), "X-Webhook-Id": "w1"},
    )
    await client.post(
        "/v1/pagerduty",
        data=body,
        headers={"X-PagerDuty-Signature": sign(body, SECRETS[4]), "X-Webhook-Id": "w2"},
    )

    assert len(errors) >= 4  # the failure paths really ran
    assert len(sink.commands) == 2
    out = capsys.readouterr()
    haystacks = {
        "stdlib logs": "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records),
        "stdout/stderr": out.out + out.err,
        "errors": "\n".join("".join(traceback.format_exception(e)) for e in errors),
        "audit": "\n".join(r.model_dump_json() for r in audit.records),
        "commands": "\n".join(c.model_dump_json() for c in sink.commands),
        "settings repr": repr(pd_settings) + repr(slack_settings(fake_slack.url)),
    }
    assert caplog.records  # the SDKs did log at DEBUG
    for where, text in haystacks.items():
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked into {where}"
