"""From triage's transitions and people's commands to the engine's events, and where they go.

Pure: given an ``IncidentTransition`` and the runbook set, which target key the incident
belongs to and which engine event it becomes. Triage keys incidents by incident key; the
engine needs them by target, so the router re-keys them. The runbook, target and incident
key come from ``responder.runbooks.resolve`` (the same function ``runbooks explain``
uses); a target whose rendered names fail the RFC 1123 check becomes an incident with no
target, which the engine escalates without acting.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.engine.records import (
    CommandKind,
    CommandReceived,
    Event,
    IncidentOpened,
    IncidentResolved,
    TargetRef,
)
from responder.models.commands import Command
from responder.models.commands import CommandKind as InboundKind
from responder.models.incidents import IncidentState, IncidentTransition
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.resolve import InvalidTarget, Matched, resolve


@dataclass(frozen=True, slots=True)
class Routed:
    key: str
    """Message key on ``responder.remediation``: the target key (the incident key if none)."""
    event: Event


@dataclass(frozen=True, slots=True)
class Unrouted:
    reason: str


def route_transition(transition: IncidentTransition, runbooks: RunbookSet) -> Routed | Unrouted:
    resolution = resolve(transition.labels, transition.annotations, runbooks)
    if isinstance(resolution, Matched):
        target = TargetRef(
            namespace=resolution.target.namespace,
            kind=resolution.target.kind,
            name=resolution.target.name,
            region=resolution.target.region,
        )
        key, runbook_id, invalid = target.key, resolution.runbook.id, None
    elif isinstance(resolution, InvalidTarget):
        target, runbook_id = None, resolution.runbook.id
        key = resolution.incident_key
        invalid = f"{resolution.field}: {resolution.reason}"
    else:
        return Unrouted(f"no runbook matches alertname {resolution.alertname!r}")
    if transition.to_state is IncidentState.RESOLVED:
        return Routed(key, IncidentResolved(incident_id=transition.incident_id, at=transition.at))
    if transition.to_state is not IncidentState.OPEN:
        return Unrouted(f"transition to {transition.to_state} is not for remediation")
    return Routed(
        key,
        IncidentOpened(
            incident_id=transition.incident_id,
            incident_key=transition.incident_key,
            runbook_id=runbook_id,
            target=target,
            invalid_target=invalid,
            labels=dict(transition.labels),
            annotations=dict(transition.annotations),
            opened_at=transition.at,
            alert_received_at=transition.alert_received_at,
        ),
    )


_KINDS = {
    InboundKind.ACK: CommandKind.ACK,
    InboundKind.RESOLVE: CommandKind.RESOLVE,
    InboundKind.APPROVE: CommandKind.APPROVE,
    InboundKind.REJECT: CommandKind.REJECT,
    InboundKind.ESCALATE: CommandKind.ESCALATE,
}


def command_event(command: Command) -> CommandReceived | None:
    """The engine's view of an incident command; None for kinds remediation does not handle."""
    kind = _KINDS.get(command.kind)
    if kind is None or command.incident_id is None:
        return None
    return CommandReceived(
        incident_id=command.incident_id,
        kind=kind,
        actor=command.actor.name or command.actor.id,
        idempotency_key=command.idempotency_key,
        step=command.step,
        reason=command.reason,
        reply_to=command.reply_to,
    )
