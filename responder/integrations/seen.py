"""A bounded memory of ids seen recently (webhook ids, Slack signatures).

Deduplicates redeliveries and refuses replays without growing without bound:
entries expire after ``ttl_s`` and the oldest go first past ``max_entries``. One
per process: a replica that never saw an id lets it through, and the command's
idempotency key catches it downstream.
"""

from __future__ import annotations

from collections import OrderedDict

from responder.clock import Clock, SystemClock


class SeenCache:
    """Remembers keys for ``ttl_s`` seconds, at most ``max_entries`` of them."""

    def __init__(self, *, ttl_s: float, max_entries: int, clock: Clock | None = None) -> None:
        if ttl_s <= 0 or max_entries < 1:
            raise ValueError("ttl_s must be > 0 and max_entries >= 1")
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock or SystemClock()
        self._entries: OrderedDict[str, float] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._entries:
            key, expires = next(iter(self._entries.items()))
            if expires > now and len(self._entries) <= self._max:
                break
            del self._entries[key]

    def __contains__(self, key: object) -> bool:
        self._expire(self._clock.monotonic())
        return key in self._entries

    def add(self, key: str) -> None:
        now = self._clock.monotonic()
        self._entries.pop(key, None)
        self._entries[key] = now + self._ttl_s
        self._expire(now)

    def __len__(self) -> int:
        self._expire(self._clock.monotonic())
        return len(self._entries)
