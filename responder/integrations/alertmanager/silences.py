"""Silences in Alertmanager (API v2), as ``/responder silence MATCHER DURATION`` asks for them.

Matchers are parsed strictly where the text arrives (``responder.models.matchers``) and
checked again here before Alertmanager sees them.

Creating a silence is made idempotent by the command's key: the silence's comment carries
a reference derived from it, and a redelivered command finds the silence it already made
(``find``) instead of creating a second one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from responder.errors import PermanentError, TemporaryError
from responder.models.matchers import (
    MAX_MATCHERS,
    Matcher,
    MatcherError,
    check_matchers,
    parse_matchers,
)
from responder.retry import is_retryable_status


def silence_ref(idempotency_key: str) -> str:
    """The reference a command's silence carries in its comment (no secret, no raw key)."""
    return "ref " + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


class SilenceRequest(BaseModel):
    """What ``POST /api/v2/silences`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matchers: list[Matcher] = Field(min_length=1, max_length=MAX_MATCHERS)
    starts_at: datetime
    ends_at: datetime
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=1000)

    def body(self) -> dict[str, Any]:
        return {
            "matchers": [m.api() for m in self.matchers],
            "startsAt": self.starts_at.isoformat().replace("+00:00", "Z"),
            "endsAt": self.ends_at.isoformat().replace("+00:00", "Z"),
            "createdBy": self.created_by,
            "comment": self.comment,
        }


class AlertmanagerSilences:
    """Creates and looks up silences over HTTP, with a timeout on every request."""

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self._base}/api/v2/{path}"
        try:
            async with self._http().request(
                method, url, json=body, allow_redirects=False
            ) as response:
                text = await response.text()
                if is_retryable_status(response.status):
                    raise TemporaryError(f"Alertmanager: HTTP {response.status}", delay=2.0)
                if response.status >= 300:
                    raise PermanentError(
                        f"Alertmanager refused the silence: HTTP {response.status}: {text[:300]}"
                    )
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryError(f"Alertmanager unreachable: {type(exc).__name__}") from exc

    async def find(self, ref: str) -> str | None:
        """The id of a pending or active silence whose comment carries ``ref``."""
        silences = await self._request("GET", "silences")
        for silence in silences if isinstance(silences, list) else []:
            state = (silence.get("status") or {}).get("state")
            if ref in str(silence.get("comment", "")) and state in ("active", "pending"):
                return str(silence.get("id"))
        return None

    async def create(self, request: SilenceRequest) -> str:
        """Create the silence; its id."""
        answer = await self._request("POST", "silences", request.body())
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise PermanentError("Alertmanager answered without a silenceID")
        return silence_id


__all__ = [
    "AlertmanagerSilences",
    "Matcher",
    "MatcherError",
    "SilenceRequest",
    "check_matchers",
    "parse_matchers",
    "silence_ref",
]
