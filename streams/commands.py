"""Forwarding incident commands to the partition that owns the incident's target.

Commands (approve, reject, ack, resolve) are keyed by incident id; the remediate agent is
keyed by target. ``remediation-routes`` carries "incident id -> target key" entries,
published by remediate before any notification about the incident, and fills the
``incident-routes`` table on the same partitions as ``responder.commands``.

Written before is not read before: the agent consumes both topics, and Kafka orders
records within a partition of *one* topic only. A command answering a notification can be
fetched before the route entry written ahead of that notification (seen in CI: an Approve
dropped as "unknown incident"). So a command whose route is not known yet is parked, and
forwarded as soon as its route entry is consumed; only if none arrives within
``wait_s`` is it audited as ``remediation.command_unknown_incident``. A parked command's
event stays unacknowledged (``OrderedAcks``) until it is forwarded or given up, so a crash
meanwhile replays it rather than losing it; a rebalance waits for it (Faust waits for
in-flight events) at most ``wait_s``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from responder.engine.records import CommandReceived
from responder.models.incidents import AuditEvent

log = structlog.get_logger(__name__)

Issue = Callable[[str, CommandReceived], Awaitable[Awaitable[Any]]]
"""Hand the command to the producer for the target's remediate partition (in call order);
returns the broker's acknowledgement to await."""


@dataclass
class _Parked:
    command: CommandReceived
    kind: str
    done: asyncio.Future[None]
    expiry: asyncio.TimerHandle | None = field(default=None)


class CommandRouter:
    """Routes commands by incident id; parks those whose route has not been read yet."""

    def __init__(
        self,
        *,
        lookup: Callable[[str], str | None],
        issue: Issue,
        audit: Callable[[AuditEvent], Awaitable[Any]],
        clock: Callable[[], datetime],
        wait_s: float,
    ) -> None:
        self._lookup = lookup
        self._issue = issue
        self._audit = audit
        self._clock = clock
        self._wait_s = wait_s
        self._parked: dict[str, list[_Parked]] = {}

    @property
    def parked(self) -> int:
        return sum(len(waiting) for waiting in self._parked.values())

    async def command(self, command: CommandReceived, kind: str) -> Awaitable[Any]:
        """Forward ``command`` now, or park it until its route arrives.

        Returns what to await before the command's event may be acknowledged: the broker's
        acknowledgement of the forwarded command, or (parked) of its forward or give-up.
        """
        target_key = self._lookup(command.incident_id)
        if target_key is not None:
            return await self._issue(target_key, command)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        parked = _Parked(command, kind, done)
        parked.expiry = asyncio.get_running_loop().call_later(
            self._wait_s, self._expire, command.incident_id, parked
        )
        self._parked.setdefault(command.incident_id, []).append(parked)
        log.info("remediation.command_parked", incident_id=command.incident_id, wait_s=self._wait_s)
        return done

    async def route_known(self, incident_id: str, target_key: str) -> None:
        """A route entry was consumed: forward the commands that waited for it, in order."""
        for parked in self._parked.pop(incident_id, []):
            if parked.expiry is not None:
                parked.expiry.cancel()
            acknowledged = asyncio.ensure_future(await self._issue(target_key, parked.command))
            acknowledged.add_done_callback(functools.partial(_settle, parked.done))

    def _expire(self, incident_id: str, parked: _Parked) -> None:
        waiting = self._parked.get(incident_id, [])
        if parked in waiting:
            waiting.remove(parked)
            if not waiting:
                del self._parked[incident_id]
        command = parked.command
        log.warning(
            "remediation.command_unknown_incident",
            incident_id=command.incident_id,
            waited_s=self._wait_s,
        )
        audit = AuditEvent(
            kind="remediation.command_unknown_incident",
            incident_id=command.incident_id,
            incident_key="",
            at=self._clock(),
            data={"command": parked.kind, "actor": command.actor, "waited_s": self._wait_s},
        )
        acknowledged = asyncio.ensure_future(self._audit(audit))
        acknowledged.add_done_callback(functools.partial(_settle, parked.done))


def _settle(done: asyncio.Future[None], source: asyncio.Future[Any]) -> None:
    if done.done():
        return
    if source.cancelled():
        done.cancel()
    elif (exc := source.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(None)
