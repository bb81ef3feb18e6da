"""Cooldown per target: no new incident acts on a target until ``cooldown`` after its last action.

Steps of one incident run back to back (that is the runbook's plan); the cooldown is
between incidents, and stops the remediate-resolve-refire loop StackStorm users hit
(st2 #3607). An incident that arrives inside the cooldown waits (queued) until it ends,
and acts then only if it is still open; its escalation timer runs meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from responder.engine.records import GuardState


def not_before(guard: GuardState, cooldown: timedelta) -> datetime | None:
    """When the target may be acted on again, or None if it may be now."""
    if guard.last_action_at is None or cooldown <= timedelta(0):
        return None
    return guard.last_action_at + cooldown


def blocks(guard: GuardState, cooldown: timedelta, now: datetime) -> datetime | None:
    """The end of the cooldown if it is still running at ``now``, else None."""
    until = not_before(guard, cooldown)
    return until if until is not None and now < until else None
