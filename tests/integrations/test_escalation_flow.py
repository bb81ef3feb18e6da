"""Escalation as far as this layer goes: notifiers from the registry, commands from the edges.

The notify agent (not here yet) feeds notifications; the remediation engine (not here
yet) turns commands into transitions. This test plays both parts by hand, against
the local Slack and PagerDuty, to check the pieces meet: one page and one message per
incident, both updated on ack and on resolve, an ack in PagerDuty becoming an ACK
command, and an Approve press becoming an APPROVE of the gated step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from integrations_support import (
    INCIDENT_ID,
    ROUTING_KEY,
    WEBHOOK_SECRET,
    FakeClock,
    MemorySink,
    RecordingSleep,
    block_actions_body,
    notification,
    pagerduty_settings,
    slack_headers,
    slack_settings,
)

from responder.ingest.chatops import ChatOps
from responder.integrations.base import DeliveryOutcome
from responder.integrations.pagerduty.webhooks import sign
from responder.integrations.registry import NOTIFIERS, NotifierDeps, build_notifiers
from responder.models.commands import CommandKind
from responder.models.notifications import IncidentPhase
from responder.settings import Settings
from responder_dev.fakes.pagerduty_events import FakePagerDuty
from responder_dev.fakes.slack_api import FakeSlack


async def test_page_once_post_once_update_both_and_commands_back(
    fake_slack: FakeSlack,
    fake_pd: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    chatops: tuple[ChatOps, TestClient[Any, Any]],
    clock: FakeClock,
    sink: MemorySink,
) -> None:
    settings = Settings(
        slack=slack_settings(fake_slack.url),
        pagerduty=pagerduty_settings(fake_pd.url, tls_cert[0]),
    )
    notifiers = build_notifiers(settings, NotifierDeps(sleep=RecordingSleep()))
    assert set(notifiers) == set(NOTIFIERS) == {"slack", "pagerduty"}

    async def deliver(phase: IncidentPhase, seq: int, **kw: Any) -> dict[str, DeliveryOutcome]:
        n = notification(phase, seq, **kw)
        return {name: (await notifier.notify(n)).outcome for name, notifier in notifiers.items()}

    try:
        # steps run and fail: Slack hears, PagerDuty does not
        assert (await deliver(IncidentPhase.REMEDIATING, 1))[
            "pagerduty"
        ] is DeliveryOutcome.NOT_APPLICABLE
        await deliver(IncidentPhase.AWAITING_APPROVAL, 2)
        # the approval-gated step: a person presses Approve
        _, client = chatops
        press = block_actions_body("responder_approve", f"{INCIDENT_ID}@3")
        response = await client.post(
            "/v1/slack/interactions", data=press, headers=slack_headers(press, int(clock.now()))
        )
        assert response.status == 200
        # still failing: escalate (twice, as a redelivered message would)
        await deliver(IncidentPhase.ESCALATED, 3)
        redelivered = await deliver(IncidentPhase.ESCALATED, 3)
        assert set(redelivered.values()) == {DeliveryOutcome.DUPLICATE}
        # the on-call acks in PagerDuty: the webhook becomes a command
        ack = json.dumps(
            {
                "event": {
                    "id": "01EVT",
                    "event_type": "incident.acknowledged",
                    "resource_type": "incident",
                    "occurred_at": "2026-11-30T03:50:00Z",
                    "agent": {"id": "PUSER01", "type": "user_reference", "summary": "On Call"},
                    "data": {
                        "id": "PINC01",
                        "type": "incident",
                        "incident_key": INCIDENT_ID,
                        "status": "acknowledged",
                    },
                }
            }
        ).encode()
        response = await client.post(
            "/v1/pagerduty",
            data=ack,
            headers={"X-PagerDuty-Signature": sign(ack, WEBHOOK_SECRET), "X-Webhook-Id": "wh-1"},
        )
        assert response.status == 200
        # the engine would now move the incident on; we play its notifications
        await deliver(IncidentPhase.ACKNOWLEDGED, 4, actor="On Call")
        await deliver(IncidentPhase.RESOLVED, 5)
    finally:
        for notifier in notifiers.values():
            await notifier.aclose()

    assert [c.kind for c in sink.commands] == [CommandKind.APPROVE, CommandKind.ACK]
    assert sink.commands[0].step == 3
    assert fake_pd.by_action == {"trigger": 1, "acknowledge": 1, "resolve": 1}
    assert fake_pd.alerts[(ROUTING_KEY, INCIDENT_ID)] == "resolved"
    [message] = fake_slack.top_level()
    assert message.edits == 4
    assert "RESOLVED" in message.text


def test_registry_builds_nothing_when_disabled() -> None:
    assert build_notifiers(Settings()) == {}
