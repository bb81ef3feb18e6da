"""Time, injectable: the two shapes of clock the responder uses, defined once.

- :class:`Clock` (seconds): ``now()`` wall-clock epoch seconds, ``monotonic()`` for
  deadlines and durations. Actions, verifications and the integrations (rate limits,
  replay windows, TTLs) take one; tests pass a fake and never sleep.
- :data:`UtcClock` (``() -> datetime``): the timestamp stamped on records (alerts received,
  transitions, audit). Ingest and the Faust wiring take one; :func:`utc_now` is the real one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (timestamps written into objects)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes back (deadlines, durations)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


UtcClock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime."""


def utc_now() -> datetime:
    return datetime.now(UTC)
