"""Triage as a pure function: one alert event plus the current incident -> the next incident.

This is the dedup stage and the open/resolve decision, apart from Kafka so it can be tested
alone and reasoned about: the Faust agent in ``streams`` only reads the table, calls
:func:`apply_alert`, writes the table when something changed and publishes the transitions.

Deduplication follows Alertmanager's identity of a notification: fingerprint + startsAt +
status. A delivery that changes nothing (an HA twin, a retry after a 503 that partly reached
the topic, a replay after a crash) returns ``changed=False`` and no transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from responder.models.alerts import AlertEvent, AlertStatus
from responder.models.incidents import (
    Incident,
    IncidentState,
    IncidentTransition,
    incident_id,
)

RESOLVED_MEMORY = 256
"""Resolved fingerprints remembered per incident key; bounds the record under churn."""


@dataclass(frozen=True)
class TriageResult:
    """What one alert did: the record to store, and the transitions to publish."""

    incident: Incident | None
    changed: bool
    transitions: list[IncidentTransition] = field(default_factory=list)


def apply_alert(current: Incident | None, event: AlertEvent, *, now: datetime) -> TriageResult:
    """Fold one alert into the incident of its key."""
    if event.status is AlertStatus.FIRING:
        return _firing(current, event, now)
    return _resolved(current, event, now)


def _firing(current: Incident | None, event: AlertEvent, now: datetime) -> TriageResult:
    fp, starts_at = event.fingerprint, event.starts_at
    if current is not None:
        last_resolved = current.resolved_alerts.get(fp)
        if last_resolved is not None and starts_at <= last_resolved:
            return TriageResult(current, changed=False)  # late twin of a resolved alert
    if current is None or current.state is IncidentState.RESOLVED:
        return _open(current, event, now)
    firing_since = current.active.get(fp)
    if firing_since is not None and starts_at <= firing_since:
        return TriageResult(current, changed=False)  # duplicate, or an older episode
    updated = current.model_copy(deep=True)
    updated.active[fp] = starts_at
    return TriageResult(updated, changed=True)


def _open(previous: Incident | None, event: AlertEvent, now: datetime) -> TriageResult:
    incident = Incident(
        id=incident_id(event.incident_key, event.fingerprint, event.starts_at),
        key=event.incident_key,
        state=IncidentState.OPEN,
        opened_at=now,
        labels=dict(event.labels),
        annotations=dict(event.annotations),
        first_received_at=event.received_at,
        seq=1,
        active={event.fingerprint: event.starts_at},
        resolved_alerts=dict(previous.resolved_alerts) if previous is not None else {},
    )
    return TriageResult(
        incident, changed=True, transitions=[_transition(incident, None, event, now)]
    )


def _resolved(current: Incident | None, event: AlertEvent, now: datetime) -> TriageResult:
    fp, starts_at = event.fingerprint, event.starts_at
    if current is None:
        return TriageResult(None, changed=False)  # nothing was open for it: nothing to resolve
    firing_since = current.active.get(fp)
    if firing_since is not None and starts_at < firing_since:
        return TriageResult(current, changed=False)  # resolves an older episode
    last_resolved = current.resolved_alerts.get(fp)
    if firing_since is None and last_resolved is not None and starts_at <= last_resolved:
        return TriageResult(current, changed=False)  # duplicate resolve
    updated = current.model_copy(deep=True)
    updated.active.pop(fp, None)
    _remember_resolved(updated, fp, starts_at)
    if firing_since is None or updated.active or updated.state is not IncidentState.OPEN:
        return TriageResult(updated, changed=True)
    updated.state = IncidentState.RESOLVED
    updated.resolved_at = now
    updated.seq += 1
    transition = _transition(updated, IncidentState.OPEN, event, now)
    return TriageResult(updated, changed=True, transitions=[transition])


def _remember_resolved(incident: Incident, fingerprint: str, starts_at: datetime) -> None:
    incident.resolved_alerts.pop(fingerprint, None)
    incident.resolved_alerts[fingerprint] = starts_at
    while len(incident.resolved_alerts) > RESOLVED_MEMORY:
        del incident.resolved_alerts[next(iter(incident.resolved_alerts))]


def _transition(
    incident: Incident, from_state: IncidentState | None, event: AlertEvent, now: datetime
) -> IncidentTransition:
    return IncidentTransition(
        incident_id=incident.id,
        incident_key=incident.key,
        seq=incident.seq,
        from_state=from_state,
        to_state=incident.state,
        at=now,
        cause_fingerprint=event.fingerprint,
        alert_received_at=event.received_at,
        labels=incident.labels,
        annotations=incident.annotations,
    )
