"""PagerDuty webhooks v3 in: check the signature, turn an ack or resolve into a command.

An acknowledgement in PagerDuty must stop our escalation chain, and a resolve there
must close our incident, so those two event types become ``Command``s. Everything
else is answered 2xx and ignored. The signature header holds one or more
``v1=<hex HMAC-SHA256(secret, raw body)>`` values (several during a secret
rotation); we may hold several secrets too (our side of the rotation). Any match
is enough; comparisons are constant-time and always run over every pair.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from responder.models.commands import (
    Actor,
    Command,
    CommandKind,
    CommandSource,
    is_incident_id,
)

SIGNATURE_HEADER = "X-PagerDuty-Signature"
WEBHOOK_ID_HEADER = "X-Webhook-Id"

EVENT_COMMANDS: dict[str, CommandKind] = {
    "incident.acknowledged": CommandKind.ACK,
    "incident.resolved": CommandKind.RESOLVE,
}


def sign(body: bytes, secret: str) -> str:
    """The ``v1=`` value PagerDuty would send for ``body`` (also used by tests)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secrets: Sequence[SecretStr]) -> bool:
    """Whether any ``v1=`` value in ``header`` is the HMAC of ``body`` under any of ``secrets``."""
    if not header or not secrets:
        return False
    offered = [part.strip() for part in header.split(",") if part.strip().startswith("v1=")][
        :10
    ]  # a header with thousands of values must not cost thousands of HMACs
    if not offered:
        return False
    matched = False
    for secret in secrets:
        expected = sign(body, secret.get_secret_value())
        for value in offered:
            matched |= hmac.compare_digest(expected.encode(), value.encode())
    return matched


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Reference(_Tolerant):
    id: str
    type: str
    summary: str = ""


class WebhookEvent(_Tolerant):
    id: str
    event_type: str
    resource_type: str
    occurred_at: datetime
    agent: Reference | None = None
    data: dict[str, Any]


class WebhookEnvelope(_Tolerant):
    event: WebhookEvent


class WebhookDisposition(StrEnum):
    COMMAND = "command"
    IGNORED = "ignored"
    INVALID = "invalid"


class WebhookResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    disposition: WebhookDisposition
    reason: str
    command: Command | None = None
    incident_id: str | None = None


def parse_webhook(
    body: bytes, *, accepted_agent_types: frozenset[str], now: datetime | None = None
) -> WebhookResult:
    """Turn a verified webhook body into a command, or say why not."""
    try:
        envelope = WebhookEnvelope.model_validate_json(body)
    except ValidationError as exc:
        return WebhookResult(
            disposition=WebhookDisposition.INVALID,
            reason=f"not a v3 webhook payload ({exc.error_count()} errors)",
        )
    event = envelope.event
    kind = EVENT_COMMANDS.get(event.event_type)
    if kind is None or event.resource_type != "incident":
        return WebhookResult(
            disposition=WebhookDisposition.IGNORED, reason=f"event type {event.event_type}"
        )
    # Incidents we opened through the Events API carry our dedup_key as their incident_key.
    incident_key = event.data.get("incident_key")
    if not isinstance(incident_key, str) or not is_incident_id(incident_key):
        return WebhookResult(
            disposition=WebhookDisposition.IGNORED, reason="not one of our incidents"
        )
    agent = event.agent
    if agent is None or agent.type not in accepted_agent_types:
        # Our own acknowledge/resolve echoing back, or PagerDuty acting on its own.
        return WebhookResult(
            disposition=WebhookDisposition.IGNORED,
            reason=f"agent {agent.type if agent else 'none'} is not a person",
            incident_id=incident_key,
        )
    command = Command(
        kind=kind,
        idempotency_key=f"pagerduty:{event.id}"[:200],
        actor=Actor(id=agent.id[:64], name=agent.summary[:128]),
        source=CommandSource.PAGERDUTY,
        issued_at=now or datetime.now(UTC),
        incident_id=incident_key,
        reason=f"{event.event_type} in PagerDuty ({event.data.get('html_url', '')})"[:500],
    )
    return WebhookResult(
        disposition=WebhookDisposition.COMMAND,
        reason=event.event_type,
        command=command,
        incident_id=incident_key,
    )
