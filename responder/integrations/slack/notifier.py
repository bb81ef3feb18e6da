"""Slack out: one message per incident, edited in place as it moves, details in its thread.

The first notification of an incident posts the message (chat.postMessage) and
remembers its ``ts`` in a ``SlackMessageStore`` (a Faust table in the worker, a
dict in tests); later ones edit it (chat.update) and add one thread reply per
transition. A transition whose idempotency key was delivered is not sent again,
and an older transition never overwrites a newer one. 429s are retried after
Slack's ``Retry-After`` by slack_sdk's own ``AsyncRateLimitErrorRetryHandler``.

Known window: a crash between Slack accepting a post and the store recording its
``ts`` posts the message again on redelivery; Slack has no idempotency key to close it.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from responder.errors import ConfigError, PermanentError, TemporaryError
from responder.integrations.base import DeliveryOutcome, DeliveryResult, LockStripes
from responder.integrations.slack.blocks import fallback_text, incident_blocks, thread_text
from responder.models.notifications import Notification
from responder.settings import SlackSettings

log = structlog.get_logger(__name__)

TEMPORARY_SLACK_ERRORS = frozenset(
    {"ratelimited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}
)
"""``ok: false`` errors worth retrying; every other error code is permanent (bad channel, auth...)."""


class SlackMessageRef(BaseModel):
    """Where an incident's message lives and which transitions it already shows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str
    ts: str
    sequence: int
    delivered: tuple[str, ...] = ()


class SlackMessageStore(Protocol):
    """Per-incident message memory; the lead backs it with a Faust table keyed by incident id."""

    async def get(self, incident_id: str) -> SlackMessageRef | None: ...

    async def put(self, incident_id: str, ref: SlackMessageRef) -> None: ...


class InMemorySlackMessageStore:
    def __init__(self) -> None:
        self.refs: dict[str, SlackMessageRef] = {}

    async def get(self, incident_id: str) -> SlackMessageRef | None:
        return self.refs.get(incident_id)

    async def put(self, incident_id: str, ref: SlackMessageRef) -> None:
        self.refs[incident_id] = ref


_DELIVERED_KEEP = 64


def build_web_client(settings: SlackSettings) -> AsyncWebClient:
    """The SDK client, pointed at ``settings.base_url``, retrying 429s after Retry-After."""
    if settings.bot_token is None:
        raise ConfigError("slack.bot_token is not set")
    return AsyncWebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=settings.base_url,
        timeout=max(1, round(settings.timeout_s)),
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=settings.rate_limit_retries),
            AsyncServerErrorRetryHandler(max_retry_count=settings.server_error_retries),
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
        ],
    )


def classify(exc: Exception, what: str) -> Exception:
    """Turn an SDK failure into ``TemporaryError`` or ``PermanentError`` (never with the token)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
        if status == 429 or error == "ratelimited":
            retry_after = exc.response.headers.get("retry-after") or exc.response.headers.get(
                "Retry-After"
            )
            delay = _first_float(retry_after, default=30.0)
            return TemporaryError(f"slack {what}: rate limited", delay=delay)
        if status >= 500 or error in TEMPORARY_SLACK_ERRORS:
            return TemporaryError(f"slack {what}: {error or f'HTTP {status}'}", delay=5.0)
        return PermanentError(f"slack {what}: {error or f'HTTP {status}'}")
    if isinstance(exc, aiohttp.ClientError | TimeoutError | SlackClientError):
        return TemporaryError(f"slack {what}: {type(exc).__name__}", delay=5.0)
    return exc


def _first_float(value: Any, *, default: float) -> float:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class SlackNotifier:
    """Posts, updates and threads one message per incident."""

    name = "slack"

    def __init__(
        self,
        settings: SlackSettings,
        store: SlackMessageStore,
        client: AsyncWebClient | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client = client or build_web_client(settings)
        self._locks = LockStripes()

    async def aclose(self) -> None:
        """The SDK opens a session per call when none is given; nothing to close."""

    async def notify(self, notification: Notification) -> DeliveryResult:
        async with self._locks.for_key(notification.incident_id):
            return await self._notify(notification)

    async def _call(self, what: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self._client, what.replace(".", "_"))
        try:
            response = await method(**kwargs)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, what) from exc
        data = response.data
        return data if isinstance(data, dict) else {}

    async def _notify(self, n: Notification) -> DeliveryResult:
        bound = log.bind(incident_id=n.incident_id, runbook=n.runbook_id, phase=n.phase.value)
        ref = await self._store.get(n.incident_id)
        if ref is not None and n.idempotency_key in ref.delivered:
            return self._result(DeliveryOutcome.DUPLICATE, "transition already shown")
        if ref is not None and n.sequence < ref.sequence:
            return self._result(DeliveryOutcome.STALE, f"message shows {ref.sequence}")
        text, blocks = fallback_text(n), incident_blocks(n)
        if ref is not None:
            try:
                await self._call(
                    "chat.update", channel=ref.channel, ts=ref.ts, text=text, blocks=blocks
                )
                ref = ref.model_copy(update={"sequence": n.sequence})
            except PermanentError as exc:
                if "message_not_found" not in str(exc):
                    raise
                bound.warning("slack.message_gone", ts=ref.ts)
                ref = None  # somebody deleted it: post a fresh one
        if ref is None:
            channel = n.slack_channel or self._settings.default_channel
            data = await self._call(
                "chat.postMessage", channel=channel, text=text, blocks=blocks, unfurl_links=False
            )
            ref = SlackMessageRef(
                channel=str(data.get("channel", channel)), ts=str(data["ts"]), sequence=n.sequence
            )
            await self._store.put(n.incident_id, ref)
            bound.info("slack.posted", channel=ref.channel, ts=ref.ts)
        await self._call(
            "chat.postMessage",
            channel=ref.channel,
            thread_ts=ref.ts,
            text=thread_text(n),
            unfurl_links=False,
        )
        delivered = (*ref.delivered, n.idempotency_key)[-_DELIVERED_KEEP:]
        await self._store.put(n.incident_id, ref.model_copy(update={"delivered": delivered}))
        bound.info("slack.updated", ts=ref.ts, sequence=n.sequence)
        return self._result(DeliveryOutcome.DELIVERED, f"{ref.channel} {ref.ts}")

    def _result(self, outcome: DeliveryOutcome, detail: str) -> DeliveryResult:
        return DeliveryResult(notifier=self.name, outcome=outcome, detail=detail)
