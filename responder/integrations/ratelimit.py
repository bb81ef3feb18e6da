"""A local limiter per key, so we stay under a hosted API's published rate.

PagerDuty accepts about 120 events a minute per routing key and answers 429 past
that; waiting locally costs less than a rejected page. The limiter is a sliding
window log (exact: never more than ``limit`` grants in any ``window_s``), keyed by
a name, never by the secret itself, and driven by an injectable clock.
"""

from __future__ import annotations

from collections import deque

from responder.clock import Clock, SystemClock
from responder.integrations.base import Sleep, default_sleep


class SlidingWindowLimiter:
    """At most ``limit`` grants per key in any window of ``window_s`` seconds."""

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        *,
        clock: Clock | None = None,
        sleep: Sleep = default_sleep,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self._limit = limit
        self._window_s = window_s
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._grants: dict[str, deque[float]] = {}

    def reserve(self, key: str) -> float:
        """Seconds to wait before a call for ``key`` may go; 0 means it was granted now."""
        now = self._clock.monotonic()
        grants = self._grants.setdefault(key, deque())
        while grants and grants[0] <= now - self._window_s:
            grants.popleft()
        if len(grants) < self._limit:
            grants.append(now)
            return 0.0
        return grants[0] + self._window_s - now

    async def acquire(self, key: str) -> float:
        """Wait (with the injected sleep) until a grant for ``key``; returns seconds waited."""
        waited = 0.0
        while (delay := self.reserve(key)) > 0:
            waited += delay
            await self._sleep(delay)
        return waited
