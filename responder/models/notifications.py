"""What the engine tells people about an incident: the records every notifier is handed.

The engine builds a :class:`Notification` per incident phase (``responder.engine.notifications``)
and publishes it on ``responder.notifications``; the notify agent hands it to the notifiers
of ``responder.integrations``; ingest's ChatOps read side shows :class:`IncidentSummary`.
Shared records, so they live here: the engine must not depend on the delivery layer.

Statuses here are what a *person* sees, projections of the engine's own
(``responder.engine.records``): :class:`IncidentPhase` from the incident run's ``Stage``
plus acknowledgement and escalation; :class:`StepStatus` from a step's outcome.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from responder.models.commands import IncidentId


class IncidentPhase(StrEnum):
    """The incident states a person sees: the engine's ``Stage`` of the incident run, with
    acknowledgement and escalation folded in (``responder.engine.notifications.phase``)."""

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
    """A runbook step as a person sees it, from the step's outcome (not the ledger's status)."""

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
    measured: dict[str, Any] | None = Field(
        None, description="What its verification measured (a probe's verdict and values)."
    )


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
