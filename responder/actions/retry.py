"""Retry or give up: one classifier for every HTTP status an action meets, one backoff loop.

Kubernetes, Redis and plain HTTP failures all end up here; the part of the rule
the integrations share (429/5xx retry, ``Retry-After``, full-jitter backoff)
comes from ``responder/retry.py``, and what only actions meet is added here: 409 means
"someone changed it: read again and re-apply", 429 means "wait as long as the
server says", 5xx and transport errors mean "try again later"; 401/403/404/422
will not get better by retrying and are reported in a sentence an on-call
human understands.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import redis.exceptions

from responder.actions.base import ActionContext
from responder.errors import PermanentError, ResponderError, TemporaryError
from responder.retry import full_jitter_delay, is_retryable_status, retry_after_seconds

T = TypeVar("T")


class ConflictError(TemporaryError):
    """409: the object changed under us; the caller re-reads it and re-applies at once."""

    def __init__(self, message: str) -> None:
        super().__init__(message, delay=0.0)


class NotFoundError(PermanentError):
    """404: the object is not there (a reconcile may treat it as "not done here")."""


@dataclass(frozen=True)
class Operation:
    """What was being attempted, to name it in error sentences."""

    verb: str
    resource: str  # plural resource, with ".group" for non-core groups: "deployments.apps"
    namespace: str = ""
    name: str = ""

    def describe(self) -> str:
        where = f" {self.namespace}/{self.name}" if self.name else f" in namespace {self.namespace}"
        return f"{self.verb} {self.resource}{where if self.namespace else ''}"


_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]+)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<namespace>[^"]+)")?'
)


def _identity(user: str) -> str:
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return f"serviceaccount {parts[2]}/{parts[3]}"
    return f"user {user}"


def forbidden_sentence(message: str, op: Operation, identity: str) -> str:
    """Turn the API's 403 message into "RBAC: serviceaccount ns/sa cannot patch deployments.apps in namespace x"."""
    found = _FORBIDDEN.search(message)
    if found is None:
        where = f" in namespace {op.namespace}" if op.namespace else ""
        return f"RBAC: {identity} cannot {op.verb} {op.resource}{where}"
    resource = found["resource"] + (f".{found['group']}" if found["group"] else "")
    namespace = found["namespace"] or op.namespace
    where = f" in namespace {namespace}" if namespace else " cluster-wide"
    return f"RBAC: {_identity(found['user'])} cannot {found['verb']} {resource}{where}"


def classify_status(
    status: int,
    *,
    op: Operation,
    message: str = "",
    retry_after: str | None = None,
    identity: str = "the responder",
) -> ResponderError:
    """The error to raise for a failed call: temporary (retry) or permanent (give up and say why)."""
    detail = f": {message}" if message else ""
    if status == 409:
        return ConflictError(f"conflict on {op.describe()} (409): changed concurrently{detail}")
    if status == 429:
        return TemporaryError(
            f"rate limited on {op.describe()} (429)", delay=retry_after_seconds(retry_after, 1.0)
        )
    # 408 (request timeout) and non-standard statuses above 599 from a broken
    # proxy are retried like a 5xx here, on top of the shared rule.
    if is_retryable_status(status) or status == 408 or status > 599:
        return TemporaryError(
            f"server error on {op.describe()} ({status}){detail}",
            delay=retry_after_seconds(retry_after, 0.0),
        )
    if status == 401:
        return PermanentError(
            f"unauthenticated: the credentials of {identity} were refused (401) on {op.describe()}"
        )
    if status == 403:
        return PermanentError(forbidden_sentence(message, op, identity))
    if status == 404:
        return NotFoundError(f"not found (404): {op.describe()}; check the runbook's target")
    if status == 422:
        return PermanentError(f"rejected as invalid (422) on {op.describe()}{detail}")
    return PermanentError(f"unexpected status {status} on {op.describe()}{detail}")


def kube_error(exc: Any, op: Operation, identity: str) -> ResponderError:
    """Classify a ``kubernetes_asyncio`` ``ApiException`` (status, headers, JSON Status body)."""
    message = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = str(json.loads(body).get("message", ""))
        except (ValueError, AttributeError):
            message = str(body)[:300]
    headers: Mapping[str, str] = getattr(exc, "headers", None) or {}
    return classify_status(
        int(getattr(exc, "status", 0) or 0),
        op=op,
        message=message,
        retry_after=headers.get("Retry-After"),
        identity=identity,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: full-jitter exponential backoff."""

    attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 5.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before try ``attempt + 1`` (``attempt`` counts from 1)."""
        return full_jitter_delay(attempt - 1, base_s=self.base_s, cap_s=self.cap_s, rand=rng.random)


_TRANSIENT = (
    ConnectionError,
    aiohttp.ClientConnectionError,
    aiohttp.ServerTimeoutError,
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


async def with_retries(
    ctx: ActionContext,
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    what: str,
    rng: random.Random | None = None,
) -> T:
    """Run ``call`` until it succeeds, a permanent error, the attempts or the step deadline run out.

    ``call`` must do the whole read-modify-write, so a 409 retry re-reads.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except PermanentError:
            raise
        except (TemporaryError, *_TRANSIENT) as exc:
            # A transport failure says nothing about when to come back: the backoff decides.
            error = (
                exc
                if isinstance(exc, TemporaryError)
                else TemporaryError(f"{what}: {exc!r}", delay=0.0)
            )
            if attempt >= policy.attempts:
                raise TemporaryError(
                    f"{what}: gave up after {attempt} tries: {error}", delay=error.delay
                ) from exc
            delay = max(error.delay, policy.backoff(attempt, rng))
            if ctx.deadline is not None and ctx.clock.monotonic() + delay >= ctx.deadline:
                raise TemporaryError(f"{what}: step deadline reached: {error}") from exc
            ctx.logger.info(
                "action.retry",
                what=what,
                attempt=attempt,
                delay_s=round(delay, 3),
                error=str(error),
            )
            await asyncio.sleep(delay)
