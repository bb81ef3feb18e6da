"""The incident record and the events that tell the world how it changed.

An incident is the unit of response: every alert with the same incident key joins the open
one. The record keeps only what a decision needs (the fingerprints that fire now, and a
short memory of resolved ones), so its size follows the number of distinct alerts, never
the number of deliveries: a storm of 100,000 duplicates leaves it as it was.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

INCIDENT_ID_NAMESPACE = uuid.UUID("5d0c1a52-7a41-4c7e-9a57-6f2b1f0c2d11")
"""Namespace of the deterministic incident ids (uuid5): replays and retries yield the same id."""


class IncidentState(StrEnum):
    """Whether an incident's alerts still fire: triage's view (open until every alert resolved).

    Remediation's progress is not here: it is the incident run's ``Stage``
    (``responder.engine.records``), and what a person is shown is ``IncidentPhase``
    (``responder.models.notifications``), derived from both.
    """

    OPEN = "open"
    RESOLVED = "resolved"


class Incident(BaseModel):
    """The current incident of one incident key: the value of the ``incidents`` table."""

    model_config = ConfigDict(extra="forbid")

    id: str
    key: str
    state: IncidentState
    opened_at: datetime
    resolved_at: datetime | None = None
    labels: dict[str, str] = Field(description="Labels of the alert that opened it, for display.")
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations of the alert that opened it: runbook targets may be templated "
        "from them, so remediation resolves the target from what ingest keyed it by.",
    )
    first_received_at: datetime = Field(description="When ingest received the opening alert.")
    seq: int = Field(0, description="Transitions so far; orders this incident's events.")
    active: dict[str, datetime] = Field(
        default_factory=dict, description="Fingerprint -> startsAt of the alerts firing now."
    )
    resolved_alerts: dict[str, datetime] = Field(
        default_factory=dict,
        description="Fingerprint -> startsAt of recently resolved alerts, oldest first, bounded: "
        "a late duplicate of a resolved alert must not reopen anything.",
    )


class IncidentTransition(BaseModel):
    """One change of an incident's state: a message on ``responder.incidents``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str
    incident_key: str
    seq: int
    from_state: IncidentState | None
    to_state: IncidentState
    at: datetime
    cause_fingerprint: str
    alert_received_at: datetime = Field(
        description="When ingest received the alert that caused it: end-to-end latency starts here."
    )
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)


class AuditEvent(BaseModel):
    """An append-only fact on ``responder.audit``: what changed, to which incident, when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    incident_id: str
    incident_key: str
    at: datetime
    data: dict[str, Any]

    @classmethod
    def of_transition(cls, transition: IncidentTransition) -> AuditEvent:
        return cls(
            kind=f"incident.{transition.to_state}",
            incident_id=transition.incident_id,
            incident_key=transition.incident_key,
            at=transition.at,
            data=transition.model_dump(mode="json"),
        )


def incident_id(key: str, fingerprint: str, starts_at: datetime) -> str:
    """The id of the incident opened by this alert: the same however often it is delivered."""
    return str(uuid.uuid5(INCIDENT_ID_NAMESPACE, f"{key}\n{fingerprint}\n{starts_at.isoformat()}"))
