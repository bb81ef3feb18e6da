"""One active incident per target; the others queue, first come first served.

Rule: the first incident on a target holds it until the incident *ends* (resolved by its
verification, by its alert resolving, or by a person), even when its steps are exhausted
and people are handling it: two runbooks changing one workload at once, or automation
acting while a person is, makes things worse. A later incident on the same target (another
runbook, or the same runbook re-firing) queues; it is escalated on its own timer while it
waits, and when the holder ends it takes the target if it is still open.
"""

from __future__ import annotations

from responder.engine.records import TargetState


def admit(state: TargetState, incident_id: str) -> bool:
    """Give the target to ``incident_id`` if free (True), else queue it (False)."""
    if state.active is None or state.active == incident_id:
        state.active = incident_id
        return True
    if incident_id not in state.queue:
        state.queue.append(incident_id)
    return False


def release(state: TargetState, incident_id: str) -> str | None:
    """``incident_id`` ended: drop it, and return the queued incident that takes the target."""
    if incident_id in state.queue:
        state.queue.remove(incident_id)
    if state.active != incident_id:
        return None
    state.active = None
    while state.queue:
        nxt = state.queue.pop(0)
        if nxt in state.runs:
            state.active = nxt
            return nxt
    return None
