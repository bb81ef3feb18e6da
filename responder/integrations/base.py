"""The one interface every notifier sits behind (the data it is handed is in
``responder.models.notifications``), and the inbound audit records of the receivers.

Routing (who hears about which transition) is decided by the notify agent; a
notifier only delivers (Alertmanager's ``notify/`` split). A notifier raises
``TemporaryError`` when a later attempt may succeed and ``PermanentError`` when it
cannot; it never posts twice for the same ``Notification.idempotency_key``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from responder.models.notifications import Notification

Sleep = Callable[[float], Awaitable[None]]
"""``asyncio.sleep`` in production; a recorder in tests."""

default_sleep: Sleep = asyncio.sleep


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    """This transition was delivered before: nothing sent."""
    STALE = "stale"
    """A newer transition was delivered already: nothing sent."""
    NOT_APPLICABLE = "not_applicable"
    """This notifier has nothing to say about this transition (e.g. PagerDuty on a step)."""


class DeliveryResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    notifier: str
    outcome: DeliveryOutcome
    detail: str = ""


@runtime_checkable
class Notifier(Protocol):
    """Delivers notifications to one outside system."""

    name: str

    async def notify(self, notification: Notification) -> DeliveryResult:
        """Deliver, or raise ``TemporaryError``/``PermanentError``."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


class AuditOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED_SIGNATURE = "refused_signature"
    REFUSED_AUTHORIZATION = "refused_authorization"
    INVALID = "invalid"
    IGNORED = "ignored"


class InboundAudit(BaseModel):
    """One inbound request's fate: every refusal is recorded, with no secret in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    channel: str = Field(description="slack_command, slack_interaction or pagerduty")
    outcome: AuditOutcome
    reason: str = Field(max_length=500)
    actor_id: str | None = Field(None, max_length=64)
    command: str | None = Field(
        None, max_length=300, description="The command text as typed, truncated (no secrets)."
    )
    incident_id: str | None = Field(None, max_length=64)
    remote: str | None = Field(None, max_length=64, description="Peer address as seen by ingest.")


class AuditSink(Protocol):
    """Where inbound audit records go (``responder.audit`` once wired)."""

    async def emit(self, record: InboundAudit) -> None: ...


class LockStripes:
    """A fixed set of locks picked by key: one incident's notifications go one at a time.

    Bounded (unlike a lock per incident id); unrelated incidents sharing a stripe only wait
    for each other briefly.
    """

    def __init__(self, stripes: int = 64) -> None:
        self._locks = tuple(asyncio.Lock() for _ in range(stripes))

    def for_key(self, key: str) -> asyncio.Lock:
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]
