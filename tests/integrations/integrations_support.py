"""Helpers for the integration tests: secrets, payloads shaped as the docs show them, signing
as Slack does, a fake clock and sleep, in-memory command/audit sinks and incident reader."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from responder.integrations.base import InboundAudit
from responder.models.commands import Command
from responder.models.notifications import (
    IncidentPhase,
    IncidentSummary,
    Notification,
    Severity,
    StepReport,
    StepStatus,
)
from responder.settings import ChatOpsAllowList, PagerDutySettings, SlackSettings
from responder_dev.fakes.slack_requests import block_actions_body as press_body

BOT_TOKEN = "xoxb-1111111111-2222222222-SeCrEtBoTtOkEn"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5-signing"
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"
OTHER_ROUTING_KEY = "0THERR0UT1NGKEY0THERR0UT1NGKEY32"
WEBHOOK_SECRET = "pd-webhook-secret-current-0123456789"
OLD_WEBHOOK_SECRET = "pd-webhook-secret-previous-9876543210"
INCIDENT_ID = "5d0c1a52-7a41-4c7e-9a57-6f2b1f0c2d11"
ALLOWED_USER = "U0ALLOWED"
GROUP_MEMBER = "U0ONCALL"
STRANGER = "U0STRANGER"
ONCALL_GROUP = "S0ONCALL"
SECRETS = (
    BOT_TOKEN,
    SIGNING_SECRET,
    ROUTING_KEY,
    OTHER_ROUTING_KEY,
    WEBHOOK_SECRET,
    OLD_WEBHOOK_SECRET,
)


class FakeClock:
    """Wall and monotonic time that only move when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.wall = start if start is not None else time.time()
        self.mono = 1000.0

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class RecordingSleep:
    """Records the delays asked for and returns at once (yielding to the loop)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self._clock = clock

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._clock is not None:
            self._clock.advance(seconds)
        await asyncio.sleep(0)


class MemorySink:
    """CommandSink in memory; ``fail`` makes publish raise as a broker outage would."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.fail = False
        self.delay_s = 0.0

    async def publish(self, command: Command) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise ConnectionError("broker unavailable")
        self.commands.append(command)


class MemoryAudit:
    def __init__(self) -> None:
        self.records: list[InboundAudit] = []

    async def emit(self, record: InboundAudit) -> None:
        self.records.append(record)


class MemoryReader:
    def __init__(self, incidents: Sequence[IncidentSummary] = ()) -> None:
        self.incidents = {i.id: i for i in incidents}
        self.delay_s = 0.0

    async def list_open(self, limit: int) -> Sequence[IncidentSummary]:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return [i for i in self.incidents.values() if i.phase is not IncidentPhase.RESOLVED][:limit]

    async def get(self, incident_id: str) -> IncidentSummary | None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.incidents.get(incident_id)


def summary(
    incident_id: str = INCIDENT_ID, runbook: str = "high_generation_latency"
) -> IncidentSummary:
    return IncidentSummary(
        id=incident_id,
        runbook_id=runbook,
        title="HighGenerationLatency on musicgen-engine",
        phase=IncidentPhase.ESCALATED,
        severity=Severity.CRITICAL,
        opened_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
        target={"namespace": "prod", "deployment": "musicgen-engine"},
        current_step=2,
        steps=(
            StepReport(
                index=0, action="cache.clear", status=StepStatus.FAILED, detail="p95 still 0.9 s"
            ),
        ),
    )


def notification(phase: IncidentPhase, seq: int, **overrides: Any) -> Notification:
    steps = (
        StepReport(
            index=0,
            action="cache.clear",
            status=StepStatus.FAILED,
            detail="deleted 1204 keys; p95 still 0.91 s",
        ),
        StepReport(
            index=1, action="model.reload", status=StepStatus.FAILED, detail="p95 still 0.88 s"
        ),
        StepReport(
            index=2,
            action="deployment.scale",
            status=StepStatus.SUCCEEDED,
            detail="replicas 4 -> 8",
        ),
        StepReport(
            index=3, action="region.failover", status=StepStatus.PENDING, approval_required=True
        ),
    )
    fields: dict[str, Any] = {
        "idempotency_key": f"{INCIDENT_ID}:{seq}",
        "incident_id": INCIDENT_ID,
        "sequence": seq,
        "runbook_id": "high_generation_latency",
        "title": "HighGenerationLatency on musicgen-engine",
        "phase": phase,
        "severity": Severity.CRITICAL,
        "target": {"namespace": "prod", "deployment": "musicgen-engine"},
        "steps": steps,
        "current_step": 3,
        "escalation_level": 1 if phase is IncidentPhase.ESCALATED else 0,
        "event": f"now {phase.value}",
        "links": (
            {"href": "https://runbooks.example/high_generation_latency", "text": "Runbook"},
            {"href": "http://prometheus.example/graph?g0.expr=latency", "text": "Prometheus"},
        ),
        "occurred_at": datetime(2026, 11, 30, 3, seq, tzinfo=UTC),
    }
    fields.update(overrides)
    return Notification.model_validate(fields)


def slack_settings(base_url: str, **overrides: Any) -> SlackSettings:
    fields: dict[str, Any] = {
        "enabled": True,
        "bot_token": SecretStr(BOT_TOKEN),
        "signing_secret": SecretStr(SIGNING_SECRET),
        "base_url": base_url + "/api/",
        "timeout_s": 5.0,
        "rate_limit_retries": 2,
        "allow": ChatOpsAllowList(
            users=frozenset({ALLOWED_USER}), user_groups=frozenset({ONCALL_GROUP})
        ),
        "response_url_hosts": frozenset({"127.0.0.1"}),
        "response_url_require_https": False,
    }
    fields.update(overrides)
    return SlackSettings.model_validate(fields)


def pagerduty_settings(events_url: str, ca_file: Path, **overrides: Any) -> PagerDutySettings:
    fields: dict[str, Any] = {
        "enabled": True,
        "events_url": events_url,
        "ca_file": str(ca_file),
        "trust_env": False,
        "routing_keys": {
            "default": SecretStr(ROUTING_KEY),
            "platform": SecretStr(OTHER_ROUTING_KEY),
        },
        "webhook_secrets": (SecretStr(WEBHOOK_SECRET), SecretStr(OLD_WEBHOOK_SECRET)),
        "timeout_s": 5.0,
        "max_attempts": 4,
        "backoff_base_s": 0.5,
        "backoff_cap_s": 8.0,
    }
    fields.update(overrides)
    return PagerDutySettings.model_validate(fields)


def slack_sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Exactly as Slack signs: v0= + hex HMAC-SHA256(secret, "v0:{ts}:{body}")."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_headers(body: bytes, timestamp: int, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": slack_sign(body, timestamp),
        **extra,
    }


def slash_body(
    text: str,
    *,
    user_id: str = ALLOWED_USER,
    response_url: str = "",
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
) -> bytes:
    """A slash command body with the fields Slack's docs list, form-encoded as Slack sends it."""
    return urllib.parse.urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0001",
            "team_domain": "example",
            "enterprise_id": "E0001",
            "enterprise_name": "Globular Construct Inc",
            "channel_id": "C2147483705",
            "channel_name": "test",
            "user_id": user_id,
            "user_name": "steve",
            "command": "/responder",
            "text": text,
            "response_url": response_url,
            "trigger_id": trigger_id,
            "api_app_id": "A123456",
        }
    ).encode()


def block_actions_body(
    action_id: str,
    value: str,
    *,
    user_id: str = ALLOWED_USER,
    response_url: str = "",
    trigger_id: str = "12466734323.1395872398",
) -> bytes:
    """A block_actions interaction as Slack's reference shapes it: one form field, ``payload``."""
    return press_body(
        action_id,
        value,
        user_id=user_id,
        trigger_id=trigger_id,
        response_url=response_url,
        ts="1700000000.000001",
    )
