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

from streams.offsets import ProcessedOffsets

log = structlog.get_logger(__name__)

Write = Callable[[], Awaitable[Any]]
"""Issues a write that must follow the previous event's (a table's changelog record: a later
value of a key must never reach the compacted changelog before an earlier one) and returns
its acknowledgement to await."""


def table_write(table: Any, key: bytes, value: bytes) -> Write:
    """``table[key] = value`` in memory now (the next event sees it); its changelog record as
    the ``then`` write to hand to ``OrderedAcks.add``.

    Not Faust's ``table[key] = value``: that buffers the changelog record and Faust's commit
    flushes the buffer with a 0.1 s give-up (``ProducerBuffer.flush_atmost``), so an offset
    could be committed before the state change it caused is durable.
    """
    partition = table.partition_for_key(key)  # the current event's partition
    table.data[key] = value

    def write_changelog() -> Any:
        return table.send_changelog(partition, key, value)

    return write_changelog


def table_delete(table: Any, key: bytes) -> Write:
    """``del table[key]`` in memory now; its changelog tombstone as the ``then`` write
    (what :func:`table_write` is for a value)."""
    partition = table.partition_for_key(key)
    table.data.pop(key, None)

    def write_changelog() -> Any:
        return table.send_changelog(partition, key, None)

    return write_changelog


def all_writes(writes: list[Write]) -> Write | None:
    """Several ``then`` writes as one, issued together in order (None: nothing to write)."""
    if not writes:
        return None

    def issue() -> Any:
        return asyncio.gather(*(write() for write in writes))

    return issue


class OrderedAcks:
    """Acknowledge a manual-ack stream's events in order, each after its own writes land."""

    def __init__(
        self,
        app: Any,
        stream: Any,
        *,
        max_in_flight: int,
        name: str,
        offsets: ProcessedOffsets | None = None,
    ) -> None:
        """``offsets``: told each finished event's offset, so that commits of the topics it
        manages never pass what this agent finished (``streams.offsets``)."""
        self._app = app
        self._offsets = offsets
        self._stream = stream
        self._slots = asyncio.Semaphore(max_in_flight)
        self._last: asyncio.Task[bool] | None = None
        self._last_issued: asyncio.Future[bool] | None = None
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
            raise PipelineHalted(f"{self._name}: an earlier event's write failed") from self._failed
        await self._slots.acquire()
        self.in_flight += 1
        issued: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._last = asyncio.create_task(
            self._finish(self._last, self._last_issued, issued, event, list(sent), then, after)
        )
        self._last_issued = issued

    async def drain(self) -> None:
        """Wait until every event handed over so far is acknowledged (tests)."""
        if self._last is not None:
            await asyncio.shield(self._last)

    async def _finish(
        self,
        previous: asyncio.Task[bool] | None,
        previous_issued: asyncio.Future[bool] | None,
        issued: asyncio.Future[bool],
        event: Any,
        sent: list[Awaitable[Any]],
        then: Write | None,
        after: Callable[[], None] | None,
    ) -> bool:
        """True once ``event`` is acknowledged; False if it or an earlier event failed.

        Never raises (but for cancellation): the first failure is recorded, crashes the
        app, and makes every later event of the chain stop short of its ordered write and
        its acknowledgement (their state may include the failed event's).
        """
        try:
            try:
                if sent:
                    await asyncio.gather(*sent)
                in_order = True if previous_issued is None else await previous_issued
                written = then() if in_order and then is not None else None
            except BaseException:
                issued.set_result(False)
                raise
            issued.set_result(in_order)
            if not in_order:
                return False
            if written is not None:
                await written
            if previous is not None and not await previous:
                return False
            if after is not None:
                after()
            if self._offsets is not None:
                message = event.message
                self._offsets.done(message.tp, message.offset)
            await self._stream.ack(event)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failed write halts the chain, recorded
            if self._failed is None:
                self._failed = exc
                log.error("pipeline.write_failed", agent=self._name, error=repr(exc))
                await self._app.crash(exc)
            return False
        finally:
            self.in_flight -= 1
            self._slots.release()


class PipelineHalted(RuntimeError):
    """An agent's writes failed; it takes no more events (the app is crashing)."""
