"""OrderedAcks: events acknowledged in arrival order, each only after its own writes landed.

The stream and app here only record what OrderedAcks calls on them (``ack``, ``crash``);
the writes are plain futures the test completes in the order it wants, so every
interleaving the broker could produce is reachable.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.pipeline import OrderedAcks, PipelineHalted


class Recorder:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.crashed: list[BaseException] = []

    async def ack(self, event: int) -> bool:
        self.acked.append(event)
        return True

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def settle() -> None:
    """Let every ready task run until all are blocked (no wall-clock wait)."""
    for _ in range(50):
        await asyncio.sleep(0)


def futures(n: int) -> list[asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(n)]


def landed_write(issued: list[int], n: int) -> Any:
    """An ordered write that records its issue and is acknowledged at once."""

    def issue() -> Any:
        issued.append(n)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    return issue


async def test_a_later_event_whose_writes_land_first_waits_for_the_earlier_one() -> None:
    rec = Recorder()
    acks = OrderedAcks(rec, rec, max_in_flight=10, name="t")
    first, second = futures(2)
    await acks.add(0, [first])
    await acks.add(1, [second])
    second.set_result(None)
    await settle()
    assert rec.acked == []  # event 1's write is on the broker, event 0's is not
    first.set_result(None)
    await acks.drain()
    assert rec.acked == [0, 1]
    assert acks.in_flight == 0


async def test_ordered_writes_are_issued_in_event_order_after_the_events_own_sends() -> None:
    rec = Recorder()
    acks = OrderedAcks(rec, rec, max_in_flight=10, name="t")
    issued: list[int] = []
    sends = futures(3)
    for n in range(3):
        await acks.add(n, [sends[n]], landed_write(issued, n))
    sends[2].set_result(None)
    sends[1].set_result(None)
    await settle()
    assert issued == []  # event 0's sends are not acknowledged: nothing may follow it
    sends[0].set_result(None)
    await acks.drain()
    assert issued == [0, 1, 2]
    assert rec.acked == [0, 1, 2]


async def test_a_failed_write_acknowledges_nothing_after_it_and_crashes_the_app() -> None:
    rec = Recorder()
    acks = OrderedAcks(rec, rec, max_in_flight=10, name="t")
    writes = futures(3)
    issued: list[int] = []
    for n in range(3):
        await acks.add(n, [writes[n]], landed_write(issued, n))
    writes[0].set_result(None)
    writes[2].set_result(None)
    writes[1].set_exception(RuntimeError("producer gave up"))
    await until(lambda: acks.in_flight == 0)
    assert rec.acked == [0]
    # Event 2's state may hold event 1's: its changelog record must not be written either.
    assert issued == [0]
    assert len(rec.crashed) == 1
    assert "producer gave up" in str(rec.crashed[0])
    with pytest.raises(PipelineHalted) as halted:
        await acks.add(3)
    assert "producer gave up" in str(halted.value.__cause__)


async def test_the_agent_waits_while_max_in_flight_events_are_pending() -> None:
    rec = Recorder()
    acks = OrderedAcks(rec, rec, max_in_flight=2, name="t")
    writes = futures(3)
    await acks.add(0, [writes[0]])
    await acks.add(1, [writes[1]])
    third = asyncio.create_task(acks.add(2, [writes[2]]))
    await settle()
    assert not third.done()
    writes[0].set_result(None)
    await asyncio.wait_for(third, 5)
    writes[1].set_result(None)
    writes[2].set_result(None)
    await acks.drain()
    assert rec.acked == [0, 1, 2]
