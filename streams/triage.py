"""The triage agent: alerts in, deduplicated, folded into the incident of their key.

The decision is :func:`responder.models.triage.apply_alert`; this module only moves bytes
between the topic, the table and the output topics. Concurrency stays 1: with more,
faust-streaming can commit an offset past a message still in flight (issue 606), and a
crash would lose it. One partition owns one incident key, so ordering per incident holds.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from responder.models.alerts import AlertEvent
from responder.models.incidents import AuditEvent, Incident
from responder.models.triage import apply_alert

if TYPE_CHECKING:
    from streams.app import ResponderStreams

log = structlog.get_logger(__name__)


def register_triage(streams: ResponderStreams) -> Any:
    """Attach the triage agent to the app; returns the agent (for ``test_context``)."""
    table = streams.incidents_table

    async def triage(stream: Any) -> None:
        async for event in stream.events():
            await _triage_one(streams, table, event.key, event.value)

    return streams.app.agent(streams.alerts, name="triage", concurrency=1)(triage)


async def _triage_one(streams: ResponderStreams, table: Any, key: bytes, value: bytes) -> None:
    try:
        alert = AlertEvent.model_validate_json(value)
    except ValidationError as exc:
        # Retrying cannot fix it; skipping keeps the partition moving. Ingest never writes one.
        log.error("triage.invalid_alert", key=key, error=str(exc))
        return
    if key != alert.incident_key.encode():
        log.warning("triage.key_mismatch", key=key, incident_key=alert.incident_key)
    stored = table.get(key)
    current = Incident.model_validate_json(stored) if stored is not None else None
    result = apply_alert(current, alert, now=streams.clock())
    # Transitions first, then the table, each awaited until the broker acknowledged it, and
    # only then is the event acknowledged (concurrency 1). A crash in between replays the
    # event: the table still lacks it, so the same transition (same incident id and seq) is
    # published again rather than lost. Faust's own table write is not awaited: its commit
    # flushes the producer buffer with a 0.1 s give-up (ProducerBuffer.flush_atmost), so an
    # offset can be committed before the changelog record and a crash then loses the update.
    for transition in result.transitions:
        log.info(
            "incident.transition",
            incident_id=transition.incident_id,
            incident_key=transition.incident_key,
            to_state=transition.to_state,
        )
        audit = AuditEvent.of_transition(transition)
        sent = [
            await streams.incidents.send(key=key, value=transition.model_dump_json().encode()),
            await streams.audit.send(key=key, value=audit.model_dump_json().encode()),
        ]
        await asyncio.gather(*sent)
    if result.changed and result.incident is not None:
        await _store_durably(table, key, result.incident.model_dump_json().encode())


async def _store_durably(table: Any, key: bytes, value: bytes) -> None:
    """``table[key] = value``, returning once the changelog record is acknowledged."""
    changelog = table.send_changelog(table.partition_for_key(key), key, value)
    table.data[key] = value
    await changelog
