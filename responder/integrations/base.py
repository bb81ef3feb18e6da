"""The one interface every notifier sits behind, and the data it is handed.

Routing (who hears about which transition) is decided by the notify agent; a
notifier only delivers (Alertmanager's ``notify/`` split). A notifier raises
``TemporaryError`` when a later attempt may succeed and ``PermanentError`` when it
cannot; it never posts twice for the same ``Notification.idempotency_key``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from responder.models.commands import IncidentId

Sleep = Callable[[float], Awaitable[None]]
"""``asyncio.sleep`` in production; a recorder in tests."""

default_sleep: Sleep = asyncio.sleep


class IncidentPhase(StrEnum):
    """The incident states a person sees (mirrors the engine's state machine)."""

    OPEN = "open"
    REMEDIATING = "remediating"
    VERIFYING = "verifying"
    AWAITING_APPROVAL = "awaiting_approval"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """Runbook severities; each notifier maps them to its own scale."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"


class StepReport(BaseModel):
    """One runbook step as tried so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    action: str
    status: StepStatus
    detail: str = Field("", max_length=2000, description="What it changed or why it failed.")
    approval_required: bool = False


class Link(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    href: str = Field(max_length=2048)
    text: str = Field(max_length=200)


class Notification(BaseModel):
    """What the notify agent hands every notifier: the incident as it stands after one transition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: str = Field(
        min_length=1,
        max_length=200,
        description="Unique per transition (incident id + transition seq): the same key is never "
        "delivered twice.",
    )
    incident_id: IncidentId
    sequence: int = Field(
        ge=0, description="Transition number: an older notification never overwrites a newer one."
    )
    runbook_id: str = Field(max_length=128)
    title: str = Field(min_length=1, max_length=500)
    phase: IncidentPhase
    severity: Severity = Severity.WARNING
    target: dict[str, str] = Field(default_factory=dict, description="namespace, workload, ...")
    steps: tuple[StepReport, ...] = ()
    current_step: int | None = None
    escalation_level: int = Field(0, ge=0)
    actor: str | None = Field(None, max_length=128, description="Who caused this transition.")
    event: str = Field(
        "", max_length=2000, description="One line on what just happened, for the thread."
    )
    links: tuple[Link, ...] = ()
    slack_channel: str | None = Field(None, description="The runbook's channel; default if None.")
    acknowledged: bool = Field(
        False,
        description="A person has acknowledged the incident, whatever its phase shows (a step "
        "may still wait for approval): PagerDuty is acknowledged as soon as this is true.",
    )
    awaiting_approval: bool = Field(
        False,
        description="The current step waits for a person's approval, whatever the phase shows "
        "(an escalation level firing meanwhile shows as escalated): the buttons stay.",
    )
    pagerduty_service: str | None = Field(
        None, description="Name of the routing key (PagerDutySettings.routing_keys) to page."
    )
    occurred_at: datetime

    @property
    def approval_step(self) -> StepReport | None:
        """The step waiting for a person's approval, if the incident waits for one."""
        waiting = self.phase is IncidentPhase.AWAITING_APPROVAL or self.awaiting_approval
        if not waiting or self.current_step is None:
            return None
        for step in self.steps:
            if step.index == self.current_step:
                return step
        return None


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    """This transition was delivered before: nothing sent."""
    STALE = "stale"
    """A newer transition was delivered already: nothing sent."""
    NOT_APPLICABLE = "not_applicable"
    """This notifier has nothing to say about this transition (e.g. PagerDuty on a step)."""


class DeliveryResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    notifier: str
    outcome: DeliveryOutcome
    detail: str = ""


@runtime_checkable
class Notifier(Protocol):
    """Delivers notifications to one outside system."""

    name: str

    async def notify(self, notification: Notification) -> DeliveryResult:
        """Deliver, or raise ``TemporaryError``/``PermanentError``."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


class IncidentSummary(BaseModel):
    """The read model ``/responder list`` and ``show`` display."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: IncidentId
    runbook_id: str
    title: str
    phase: IncidentPhase
    severity: Severity = Severity.WARNING
    opened_at: datetime
    target: dict[str, str] = Field(default_factory=dict)
    current_step: int | None = None
    steps: tuple[StepReport, ...] = ()


class AuditOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED_SIGNATURE = "refused_signature"
    REFUSED_AUTHORIZATION = "refused_authorization"
    INVALID = "invalid"
    IGNORED = "ignored"


class InboundAudit(BaseModel):
    """One inbound request's fate: every refusal is recorded, with no secret in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    channel: str = Field(description="slack_command, slack_interaction or pagerduty")
    outcome: AuditOutcome
    reason: str = Field(max_length=500)
    actor_id: str | None = Field(None, max_length=64)
    command: str | None = Field(
        None, max_length=300, description="The command text as typed, truncated (no secrets)."
    )
    incident_id: str | None = Field(None, max_length=64)
    remote: str | None = Field(None, max_length=64, description="Peer address as seen by ingest.")


class AuditSink(Protocol):
    """Where inbound audit records go (``responder.audit`` once wired)."""

    async def emit(self, record: InboundAudit) -> None: ...


class LockStripes:
    """A fixed set of locks picked by key: one incident's notifications go one at a time.

    Bounded (unlike a lock per incident id); unrelated incidents sharing a stripe only wait
    for each other briefly.
    """

    def __init__(self, stripes: int = 64) -> None:
        self._locks = tuple(asyncio.Lock() for _ in range(stripes))

    def for_key(self, key: str) -> asyncio.Lock:
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]
