"""CommandRouter: a command read before its incident's route entry waits for it.

``issue`` and ``audit`` here record what the router hands to the producer; the broker's
acknowledgement is a future the test completes. The real agent runs in
tests/streams/test_remediation_e2e.py (approval through the CLI on the real broker).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from responder.engine.records import CommandKind, CommandReceived
from responder.models.incidents import AuditEvent
from streams.commands import CommandRouter


def received(incident_id: str, kind: CommandKind = CommandKind.APPROVE) -> CommandReceived:
    return CommandReceived(
        incident_id=incident_id, kind=kind, actor="alice", idempotency_key=f"k-{incident_id}"
    )


class Producer:
    def __init__(self) -> None:
        self.routes: dict[str, str] = {}
        self.issued: list[tuple[str, CommandReceived]] = []
        self.audited: list[AuditEvent] = []

    async def issue(self, target_key: str, command: CommandReceived) -> Any:
        self.issued.append((target_key, command))
        acknowledged = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    async def audit(self, event: AuditEvent) -> None:
        self.audited.append(event)

    def router(self, wait_s: float = 30.0) -> CommandRouter:
        return CommandRouter(
            lookup=self.routes.get,
            issue=self.issue,
            audit=self.audit,
            clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
            wait_s=wait_s,
        )


async def test_a_known_route_forwards_at_once() -> None:
    producer = Producer()
    producer.routes["inc-1"] = "musearoo/api"
    done = await producer.router().command(received("inc-1"), "approve")
    await asyncio.wait_for(done, 5)
    assert [(t, c.incident_id) for t, c in producer.issued] == [("musearoo/api", "inc-1")]


async def test_a_command_ahead_of_its_route_is_forwarded_when_the_route_arrives() -> None:
    producer = Producer()
    router = producer.router()
    first = await router.command(received("inc-1"), "approve")
    second = await router.command(received("inc-1", CommandKind.RESOLVE), "resolve")
    assert producer.issued == []
    assert router.parked == 2
    assert not first.done()
    await router.route_known("inc-1", "musearoo/api")
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert [(t, c.kind) for t, c in producer.issued] == [
        ("musearoo/api", CommandKind.APPROVE),
        ("musearoo/api", CommandKind.RESOLVE),
    ]
    assert router.parked == 0
    assert producer.audited == []


async def test_a_route_for_another_incident_does_not_release_the_command() -> None:
    producer = Producer()
    router = producer.router()
    done = await router.command(received("inc-1"), "approve")
    await router.route_known("inc-2", "musearoo/api")
    assert producer.issued == []
    assert not done.done()


async def test_a_command_whose_route_never_comes_is_audited_as_unknown() -> None:
    producer = Producer()
    router = producer.router(wait_s=0.05)
    done = await router.command(received("inc-404"), "approve")
    await asyncio.wait_for(done, 5)
    assert producer.issued == []
    [audit] = producer.audited
    assert audit.kind == "remediation.command_unknown_incident"
    assert audit.incident_id == "inc-404"
    assert audit.data["command"] == "approve"
    assert router.parked == 0
    # A late route finds nothing left to forward.
    await router.route_known("inc-404", "musearoo/api")
    assert producer.issued == []


async def test_a_failed_forward_fails_the_commands_acknowledgement() -> None:
    class Failing(Producer):
        async def issue(self, target_key: str, command: CommandReceived) -> Any:
            acknowledged = asyncio.get_running_loop().create_future()
            acknowledged.set_exception(RuntimeError("producer gave up"))
            return acknowledged

    router = Failing().router()
    done = await router.command(received("inc-1"), "approve")
    await router.route_known("inc-1", "musearoo/api")
    with pytest.raises(RuntimeError, match="producer gave up"):
        await asyncio.wait_for(done, 5)
