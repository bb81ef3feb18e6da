"""Jittered exponential backoff and the retry-or-give-up decision for HTTP statuses.

One classifier for the hosted APIs we call (Alertmanager's ``Retrier.Check``):
429 and 5xx may succeed later, every other 4xx will not.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def is_retryable_status(status: int) -> bool:
    """429 and 5xx: retry; anything else that is not 2xx: give up."""
    return status == 429 or 500 <= status <= 599


def full_jitter_delay(
    attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """AWS "full jitter": uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0).

    Spreads retries from many workers so a recovering API is not hit in lockstep.
    """
    ceiling = min(cap_s, base_s * (2.0**attempt))
    return ceiling * rand()
