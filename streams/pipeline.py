"""Pipelined, ordered acknowledgement: an agent moves on while its writes travel to the broker.

An agent that awaits every send before taking its next event pays one broker round trip
per event (a few ms: a few hundred events/s per partition set). ``OrderedAcks`` lets the
agent decide event *n+1* while the records of event *n* are still in flight, and keeps the
guarantee that made awaiting safe: an event is acknowledged (its offset committable) only
once everything it wrote is acknowledged by the broker, and only after every earlier event
of the stream has been acknowledged too. Faust commits the contiguous acknowledged prefix of
a partition, so acknowledging in arrival order means a crash replays from the first event
whose writes were not all on the broker: nothing accepted is lost, and the replay finds
state the idempotent handlers already absorb.

A write that fails (the producer gave up) stops all later acknowledgements and crashes the
app: the in-memory table is then ahead of its changelog, and only a restart (tables
recovered from changelogs, events replayed from the committed offsets) makes them agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Write = Callable[[], Awaitable[Any]]
"""Issues a write that must follow the previous event's (a table's changelog record: a later
value of a key must never reach the compacted changelog before an earlier one) and returns
its acknowledgement to await."""


class OrderedAcks:
    """Acknowledge a manual-ack stream's events in order, each after its own writes land."""

    def __init__(self, app: Any, stream: Any, *, max_in_flight: int, name: str) -> None:
        self._app = app
        self._stream = stream
        self._slots = asyncio.Semaphore(max_in_flight)
        self._last: asyncio.Task[None] | None = None
        self._last_issued: asyncio.Future[None] | None = None
        self._failed: BaseException | None = None
        self._name = name
        self.in_flight = 0
        """Events handed over and not yet acknowledged (at most ``max_in_flight``)."""

    async def add(
        self,
        event: Any,
        sent: Sequence[Awaitable[Any]] = (),
        then: Write | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Acknowledge ``event`` once ``sent`` and ``then``'s write landed, after every earlier event.

        ``then`` runs once every record in ``sent`` is acknowledged and once the previous
        event's ``then`` has issued its write, so those writes reach the broker in event
        order. ``after`` runs once all of the event's writes landed and every earlier event
        is done, just before the acknowledgement: in event order, and only for what is
        durable (the remediate agent starts actions there). Waits while ``max_in_flight``
        events are pending (backpressure on the agent). Raises the first write failure
        seen, so the agent stops taking events.
        """
        if self._failed is not None:
            raise self._failed
        await self._slots.acquire()
        self.in_flight += 1
        issued: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last = asyncio.create_task(
            self._finish(self._last, self._last_issued, issued, event, list(sent), then, after)
        )
        self._last_issued = issued

    async def drain(self) -> None:
        """Wait until every event handed over so far is acknowledged (tests, shutdown)."""
        if self._last is not None:
            await asyncio.shield(self._last)

    async def _finish(
        self,
        previous: asyncio.Task[None] | None,
        previous_issued: asyncio.Future[None] | None,
        issued: asyncio.Future[None],
        event: Any,
        sent: list[Awaitable[Any]],
        then: Write | None,
        after: Callable[[], None] | None,
    ) -> None:
        written: Awaitable[Any] | None = None
        try:
            try:
                if sent:
                    await asyncio.gather(*sent)
                if previous_issued is not None:
                    await previous_issued
                written = then() if then is not None else None
            finally:
                if not issued.done():
                    issued.set_result(None)
            if written is not None:
                await written
            if previous is not None:
                await previous  # raises if an earlier event's writes failed: no ack after it
            if after is not None:
                after()
            await self._stream.ack(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._failed is None:
                self._failed = exc
                log.error("pipeline.write_failed", agent=self._name, error=repr(exc))
                await self._app.crash(exc)
            raise
        finally:
            self.in_flight -= 1
            self._slots.release()
