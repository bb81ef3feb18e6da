"""The triage agent: alerts in, deduplicated, folded into the incident of their key.

The decision is :func:`responder.models.triage.apply_alert`; this module only moves bytes
between the topic, the table and the output topics. Concurrency stays 1: with more,
faust-streaming can commit an offset past a message still in flight (issue 606), and a
crash would lose it. One partition owns one incident key, so ordering per incident holds.
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError

from responder.models.alerts import AlertEvent
from responder.models.incidents import AuditEvent, Incident, IncidentState
from responder.models.triage import TriageResult, apply_alert
from streams.context import ResponderStreams
from streams.pipeline import OrderedAcks, table_write

log = structlog.get_logger(__name__)


def register_triage(streams: ResponderStreams) -> Any:
    """Attach the triage agent to the app; returns the agent (for ``test_context``).

    ``worker.in_flight`` events may have writes on their way to the broker at once
    (``streams.pipeline.OrderedAcks``); 1 awaits each event's writes before the next.
    """
    table = streams.incidents_table

    async def triage(acks: OrderedAcks, event: Any) -> None:
        await _triage_one(streams, table, acks, event)

    return streams.pipelined_agent(streams.alerts, "triage", triage)


async def _triage_one(streams: ResponderStreams, table: Any, acks: OrderedAcks, event: Any) -> None:
    key: bytes = event.key
    try:
        alert = AlertEvent.model_validate_json(event.value)
    except ValidationError as exc:
        # Retrying cannot fix it; skipping keeps the partition moving. Ingest never writes one.
        log.error("triage.invalid_alert", key=key, error=str(exc))
        streams.metrics.alert_outcomes["invalid"].inc()
        await acks.add(event)
        return
    if key != alert.incident_key.encode():
        log.warning("triage.key_mismatch", key=key, incident_key=alert.incident_key)
    stored = table.get(key)
    current = Incident.model_validate_json(stored) if stored is not None else None
    result = apply_alert(current, alert, now=streams.clock())
    streams.metrics.alert_outcomes[_outcome(result)].inc()
    # Transitions first, then the table, each acknowledged by the broker before the event
    # is (OrderedAcks). A crash in between replays the event: the table still lacks it, so
    # the same transition (same incident id and seq) is published again rather than lost.
    # Faust's own table write is not used: its commit flushes the producer buffer with a
    # 0.1 s give-up (ProducerBuffer.flush_atmost), so an offset could be committed before
    # the changelog record and a crash would then lose the update.
    sent = []
    for transition in result.transitions:
        log.info(
            "incident.transition",
            incident_id=transition.incident_id,
            incident_key=transition.incident_key,
            to_state=transition.to_state,
        )
        audit = AuditEvent.of_transition(transition)
        sent.append(
            await streams.incidents.send(key=key, value=transition.model_dump_json().encode())
        )
        sent.append(await streams.send_audit(audit))
    if not (result.changed and result.incident is not None):
        await acks.add(event, sent)
        return
    await acks.add(event, sent, table_write(table, key, result.incident.model_dump_json().encode()))


def _outcome(result: TriageResult) -> str:
    for transition in result.transitions:
        return "opened" if transition.to_state is IncidentState.OPEN else "resolved"
    return "updated" if result.changed else "duplicate"
