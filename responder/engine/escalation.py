"""The escalation chain as data: which level fires next, and when.

Levels fire in order, each ``wait`` after the previous one; the first at ``after`` from
the incident's opening (plus its own ``wait``). When remediation gives up early (steps
exhausted, a guard halts it, ``auto_recovery: false``) the first level fires at once and
the rest follow with their waits from then. After the last level, ``repeat`` re-fires it
every ``repeat.every`` (at most ``repeat.times``). An acknowledgement stops the chain.
The next due time is stored in the incident record; the timer only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from responder.runbooks.schema import Escalation, PagerDutyLevel, SlackLevel


@dataclass(frozen=True, slots=True)
class Fired:
    """One level fired: which (index in the chain), and when the next is due."""

    index: int
    level: SlackLevel | PagerDutyLevel
    repeat: bool
    next_due: datetime | None


def first_due(escalation: Escalation, opened_at: datetime) -> datetime:
    return opened_at + escalation.after + escalation.chain[0].wait


def fire(escalation: Escalation, fired_so_far: int, repeats: int, base: datetime) -> Fired | None:
    """Fire the next level; ``base`` is when this one was due (or now, when fired early).

    Computing the next due time from the scheduled time, not from when the timer noticed,
    keeps the chain from drifting by the timer's lateness.
    """
    chain = escalation.chain
    if fired_so_far < len(chain):
        index = fired_so_far
        repeat = False
    elif escalation.repeat is not None and (
        escalation.repeat.times is None or repeats < escalation.repeat.times
    ):
        index = len(chain) - 1
        repeat = True
    else:
        return None
    upcoming = index + 1
    if not repeat and upcoming < len(chain):
        next_due: datetime | None = base + chain[upcoming].wait
    elif escalation.repeat is not None and (
        escalation.repeat.times is None or repeats + (1 if repeat else 0) < escalation.repeat.times
    ):
        next_due = base + escalation.repeat.every
    else:
        next_due = None
    return Fired(index=index, level=chain[index], repeat=repeat, next_due=next_due)
