"""Offsets are committed only up to what the agents really finished.

Faust (faust-streaming 0.15) acknowledges a message its stream *skips*: one fetched before
a rebalance and delivered after it (its generation is stale), or delivered while flow
control is suspended for the rebalance. Skipping is right (the partition is sought back to
its committed offset and the message is read again); acknowledging is not: the skipped
offsets join the acknowledged run that the next commit writes, so the group's committed
offset can pass messages no agent has processed. A worker that dies before re-reading them,
or a partition that moves to another worker, then loses them for good (the scale-out test
lost incidents this way; upstream reports: robinhood/faust#604, faust-streaming#216 and
#221). This applies to manual acknowledgement too: the skip path acknowledges regardless.

``ProcessedOffsets`` is told by ``streams.pipeline.OrderedAcks`` the offset of every event
an agent finished (its writes on the broker); ``CappedConsumer`` never commits a managed
topic's partition past one after the highest of them. Topics consumed by agents that do not
report stay as Faust commits them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class ProcessedOffsets:
    """Per partition: the highest offset an agent finished since this worker got it."""

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self._high: dict[TP, int] = {}

    def manage(self, topics: Iterable[str]) -> None:
        """Commits of these topics are capped by what is reported done."""
        self.topics.update(topics)

    def done(self, tp: TP, offset: int) -> None:
        if offset > self._high.get(tp, -1):
            self._high[tp] = offset

    def forget(self, tps: Iterable[TP]) -> None:
        """Partitions revoked: what was done there says nothing about their next owner's turn."""
        for tp in tps:
            self._high.pop(tp, None)

    def cap(self, tp: TP, offset: int, committed: int | None) -> int | None:
        """The offset to commit for ``tp`` instead of ``offset`` (None: commit nothing)."""
        if tp.topic not in self.topics:
            return offset
        high = self._high.get(tp)
        if high is None:
            return None  # nothing finished here since the assignment: only skips were acked
        capped = min(offset, high + 1)
        if committed is not None and capped <= committed:
            return None
        return capped


class CappedConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, committing no further than ``ProcessedOffsets`` allows."""

    processed: ProcessedOffsets

    def _new_offset(self, tp: TP) -> int | None:
        offset: int | None = super()._new_offset(tp)
        if offset is None:
            return None
        return self.processed.cap(tp, offset, self._committed_offset[tp])

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.processed.forget(revoked)
        await super().on_partitions_revoked(revoked)


class CappedTransport(faust_aiokafka.Transport):
    """The aiokafka transport with ``CappedConsumer``; set as ``app.transport``."""

    Consumer = CappedConsumer

    def __init__(self, *args: Any, processed: ProcessedOffsets, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.processed = processed

    def create_consumer(self, callback: Any, **kwargs: Any) -> Any:
        consumer: Any = super().create_consumer(callback, **kwargs)
        consumer.processed = self.processed
        return consumer
