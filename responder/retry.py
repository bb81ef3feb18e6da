"""The one rule for "retry or give up" on an HTTP status, and the one jittered backoff.

Actions (Kubernetes, Redis, plain HTTP targets) and integrations (PagerDuty,
Slack) both call HTTP APIs, but the layers keep them from importing each other,
so the rule they share lives here, beside ``responder/errors.py``, where both
can reach it (Alertmanager's ``Retrier.Check`` is the model). Each family keeps
its own extras in its own module: the actions' classifier and backoff loop (Kubernetes
conflicts, RBAC sentences) in ``responder/actions/retry.py``; the integrations import
this module directly and keep SDK error shapes beside the SDK calls.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def is_retryable_status(status: int) -> bool:
    """429 and 5xx: retry; anything else that is not 2xx: give up."""
    return status == 429 or 500 <= status <= 599


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds form); ``default`` when absent or a date."""
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


def full_jitter_delay(
    attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """AWS "full jitter": uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0).

    Spreads retries from many workers so a recovering API is not hit in lockstep.
    """
    ceiling = min(cap_s, base_s * (2.0**attempt))
    return ceiling * rand()
