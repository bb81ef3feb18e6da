"""Max actions per target per window: a sliding window over the start times of real actions.

Hitting the limit halts automation on the incident and escalates: a target that needed
``count`` actions within ``per`` is not being fixed by automation. Dry-run actions change
nothing and are not counted. Approved steps are a person's decision and are not refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from responder.engine.records import GuardState

KEEP_WINDOW = timedelta(hours=24)
"""The longest window kept: runbooks with a longer ``per`` are clamped to a day."""


def recent(guard: GuardState, per: timedelta, now: datetime) -> int:
    """Actions on the target within ``per`` before ``now``."""
    since = now - min(per, KEEP_WINDOW)
    return sum(1 for at in guard.action_times if at > since)


def allows(guard: GuardState, count: int, per: timedelta, now: datetime) -> bool:
    return recent(guard, per, now) < count


def record(guard: GuardState, now: datetime, *, keep: int = 1000) -> GuardState:
    """The guard after an action started at ``now`` (the window pruned, its length bounded)."""
    since = now - KEEP_WINDOW
    times = [*[at for at in guard.action_times if at > since][-(keep - 1) :], now]
    return guard.model_copy(update={"last_action_at": now, "action_times": times})
