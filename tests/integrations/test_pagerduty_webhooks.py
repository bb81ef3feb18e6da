"""PagerDuty webhooks v3 in, through the ChatOps route, signed as PagerDuty signs."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from integrations_support import (
    INCIDENT_ID,
    OLD_WEBHOOK_SECRET,
    WEBHOOK_SECRET,
    MemoryAudit,
    MemorySink,
)
from pydantic import SecretStr

from responder.ingest.chatops import ChatOps
from responder.integrations.base import AuditOutcome
from responder.integrations.pagerduty.webhooks import sign, verify_signature
from responder.models.commands import CommandKind, CommandSource

Client = TestClient[Any, Any]


def webhook(
    event_type: str = "incident.acknowledged",
    *,
    incident_key: str = INCIDENT_ID,
    agent_type: str = "user_reference",
    event_id: str = "01DEN0F8YZJ8T5Q1VM8GD5KX3C",
) -> bytes:
    """A v3 webhook as PagerDuty's docs show it (the incident data type, trimmed of nothing)."""
    body = {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-11-30T03:40:22.169Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": "Tenex Engineer",
                "type": agent_type,
            },
            "client": {"name": "PagerDuty"},
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": "acknowledged",
                "incident_key": incident_key,
                "created_at": "2026-11-30T03:16:27Z",
                "title": "[critical] HighGenerationLatency on musicgen-engine",
                "service": {
                    "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                    "id": "PF9KMXH",
                    "self": "https://api.pagerduty.com/services/PF9KMXH",
                    "summary": "API Service",
                    "type": "service_reference",
                },
                "assignees": [
                    {
                        "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                        "id": "PTUXL6G",
                        "self": "https://api.pagerduty.com/users/PTUXL6G",
                        "summary": "User 123",
                        "type": "user_reference",
                    }
                ],
                "escalation_policy": {
                    "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
                    "id": "PUS0KTE",
                    "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
                    "summary": "Default",
                    "type": "escalation_policy_reference",
                },
                "teams": [],
                "priority": None,
                "urgency": "high",
                "conference_bridge": None,
                "resolve_reason": None,
            },
        }
    }
    return json.dumps(body).encode()


def headers(
    body: bytes, *secrets: str, webhook_id: str = "b2c1d8b6-5c1e-4b8e-9f3b-0d5e7a1f2c3d"
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": ",".join(sign(body, s) for s in secrets),
        "X-Webhook-Id": webhook_id,
        "X-Webhook-Subscription": "PY1OZEA",
        "User-Agent": "PagerDuty-Webhook/V3.0",
    }


async def test_signed_ack_becomes_a_command(
    chatops: tuple[ChatOps, Client], sink: MemorySink, audit: MemoryAudit
) -> None:
    _, client = chatops
    body = webhook()
    response = await client.post("/v1/pagerduty", data=body, headers=headers(body, WEBHOOK_SECRET))
    assert response.status == 200
    [command] = sink.commands
    assert command.kind is CommandKind.ACK
    assert command.incident_id == INCIDENT_ID
    assert command.source is CommandSource.PAGERDUTY
    assert command.actor.id == "PLH1HKV"
    assert command.idempotency_key == "pagerduty:01DEN0F8YZJ8T5Q1VM8GD5KX3C"
    assert audit.records[-1].outcome is AuditOutcome.ACCEPTED


async def test_rotation_two_signatures_one_valid(
    chatops: tuple[ChatOps, Client], sink: MemorySink
) -> None:
    _, client = chatops
    body = webhook("incident.resolved")
    # PagerDuty signs with its old and new secret; only one of them is ours any more
    response = await client.post(
        "/v1/pagerduty", data=body, headers=headers(body, "retired-secret", OLD_WEBHOOK_SECRET)
    )
    assert response.status == 200
    assert [c.kind for c in sink.commands] == [CommandKind.RESOLVE]


@pytest.mark.parametrize("case", ["bad", "unsigned", "tampered", "v0-scheme"])
async def test_bad_signature_is_refused_and_audited(
    chatops: tuple[ChatOps, Client], sink: MemorySink, audit: MemoryAudit, case: str
) -> None:
    _, client = chatops
    body = webhook()
    sent = headers(body, "wrong-secret")
    if case == "unsigned":
        del sent["X-PagerDuty-Signature"]
    elif case == "tampered":
        sent = headers(body, WEBHOOK_SECRET)
        body = body.replace(b"PLH1HKV", b"PEVIL01")
    elif case == "v0-scheme":
        sent["X-PagerDuty-Signature"] = sign(body, WEBHOOK_SECRET).replace("v1=", "v0=")
    response = await client.post("/v1/pagerduty", data=body, headers=sent)
    assert response.status == 401
    assert sink.commands == []
    assert audit.records[-1].outcome is AuditOutcome.REFUSED_SIGNATURE


async def test_duplicate_webhook_id_is_ignored(
    chatops: tuple[ChatOps, Client], sink: MemorySink, audit: MemoryAudit
) -> None:
    _, client = chatops
    body = webhook()
    for _ in range(3):
        response = await client.post(
            "/v1/pagerduty", data=body, headers=headers(body, WEBHOOK_SECRET)
        )
        assert response.status == 200
    assert len(sink.commands) == 1
    assert [r.outcome for r in audit.records] == [
        AuditOutcome.ACCEPTED,
        AuditOutcome.DUPLICATE,
        AuditOutcome.DUPLICATE,
    ]


async def test_broker_outage_answers_503_and_the_retry_gets_through(
    chatops: tuple[ChatOps, Client], sink: MemorySink
) -> None:
    _, client = chatops
    body = webhook()
    sink.fail = True
    first = await client.post("/v1/pagerduty", data=body, headers=headers(body, WEBHOOK_SECRET))
    assert first.status == 503
    sink.fail = False
    retry = await client.post("/v1/pagerduty", data=body, headers=headers(body, WEBHOOK_SECRET))
    assert retry.status == 200
    assert len(sink.commands) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (webhook(incident_key="d3640fbd41094207a1c11e58e46b1662"), "not one of our incidents"),
        (webhook(incident_key="../../etc"), "not one of our incidents"),
        (webhook(agent_type="inbound_integration_reference"), "is not a person"),
        (webhook("incident.priority_updated"), "incident.priority_updated"),
    ],
)
async def test_other_events_are_acknowledged_and_ignored(
    chatops: tuple[ChatOps, Client], sink: MemorySink, audit: MemoryAudit, body: bytes, reason: str
) -> None:
    _, client = chatops
    response = await client.post("/v1/pagerduty", data=body, headers=headers(body, WEBHOOK_SECRET))
    assert response.status == 200
    assert sink.commands == []
    assert audit.records[-1].outcome is AuditOutcome.IGNORED
    assert reason in audit.records[-1].reason


async def test_garbage_with_a_valid_signature_is_400(
    chatops: tuple[ChatOps, Client], sink: MemorySink
) -> None:
    _, client = chatops
    body = b'{"event": "nope"}'
    response = await client.post("/v1/pagerduty", data=body, headers=headers(body, WEBHOOK_SECRET))
    assert response.status == 400
    assert sink.commands == []


def test_verify_signature_examples() -> None:
    body = webhook()
    secrets = (SecretStr(WEBHOOK_SECRET),)
    good = sign(body, WEBHOOK_SECRET)
    assert verify_signature(body, good, secrets)
    assert verify_signature(body, f"v1=00ff, {good}", secrets)
    assert not verify_signature(body, "v1=" + "0" * 64, secrets)
    assert not verify_signature(body, good, ())
    assert not verify_signature(body, "", secrets)
    assert not verify_signature(
        body, ",".join(["v1=00"] * 10 + [good]), secrets
    )  # at most 10 looked at


async def test_large_bodies_are_read_whole_and_oversized_ones_refused(
    chatops: tuple[ChatOps, Client], sink: MemorySink
) -> None:
    _, client = chatops
    event = json.loads(webhook())
    event["event"]["data"]["title"] = "x" * 300_000  # several TCP reads
    body = json.dumps(event).encode()
    response = await client.post(
        "/v1/pagerduty", data=io.BytesIO(body), headers=headers(body, WEBHOOK_SECRET)
    )
    assert response.status == 200
    assert len(sink.commands) == 1
    event["event"]["data"]["title"] = "x" * 1_100_000
    huge = json.dumps(event).encode()
    response = await client.post(
        "/v1/pagerduty",
        data=io.BytesIO(huge),
        headers=headers(huge, WEBHOOK_SECRET, webhook_id="other"),
    )
    assert response.status == 413
    assert len(sink.commands) == 1


async def test_a_slow_broker_gets_pagerduty_a_503_within_five_seconds(
    chatops: tuple[ChatOps, Client], sink: MemorySink
) -> None:
    _, client = chatops
    sink.delay_s = 10.0
    body = webhook()
    started = time.monotonic()
    response = await client.post("/v1/pagerduty", data=body, headers=headers(body, WEBHOOK_SECRET))
    assert time.monotonic() - started < 5.0
    assert response.status == 503
