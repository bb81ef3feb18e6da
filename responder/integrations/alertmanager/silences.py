"""Silences in Alertmanager (API v2), as ``/responder silence MATCHER DURATION`` asks for them.

Matchers come from Slack text, so they are parsed strictly: label names as Prometheus
spells them, operators ``=``, ``!=`` and ``=~`` only, values quoted or bare, and anything
else refused with a sentence saying what is wrong. A regular expression is compiled here
before Alertmanager sees it.

Creating a silence is made idempotent by the command's key: the silence's comment carries
a reference derived from it, and a redelivered command finds the silence it already made
(``find``) instead of creating a second one.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from responder.errors import PermanentError, TemporaryError
from responder.retry import is_retryable_status

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_BARE_VALUE = re.compile(r'[^\s,"=!~{}\\]+')
MAX_MATCHERS = 16
MAX_VALUE = 1024

Operator = Literal["=", "!=", "=~"]


class Matcher(BaseModel):
    """One Alertmanager matcher, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(max_length=128)
    op: Operator = "="
    value: str = Field(max_length=MAX_VALUE)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not LABEL_NAME.fullmatch(value):
            raise ValueError(f"{value[:40]!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("a value holds a control or invisible character")
        return value

    def api(self) -> dict[str, Any]:
        """The matcher as API v2 takes it."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.op == "=~",
            "isEqual": self.op != "!=",
        }

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


class MatcherError(ValueError):
    """MATCHER text that is not a list of matchers; the message is for the person who typed it."""


def _value(text: str, at: int) -> tuple[str, int]:
    """The value starting at ``at`` (quoted or bare) and the index after it."""
    if at < len(text) and text[at] == '"':
        out: list[str] = []
        i = at + 1
        while i < len(text):
            char = text[i]
            if char == "\\":
                if i + 1 >= len(text) or text[i + 1] not in '"\\':
                    raise MatcherError('only \\" and \\\\ may be escaped in a quoted value')
                out.append(text[i + 1])
                i += 2
                continue
            if char == '"':
                return "".join(out), i + 1
            if not char.isprintable():
                raise MatcherError("a quoted value holds a control character")
            out.append(char)
            i += 1
        raise MatcherError("a quoted value is not closed")
    found = _BARE_VALUE.match(text, at)
    if found is None:
        raise MatcherError(f"a value is missing at position {at + 1}")
    return found.group(), found.end()


def parse_matchers(text: str) -> list[Matcher]:
    """``alertname=HighGenerationLatency,namespace="musearoo",pod=~"api-.*"`` -> matchers.

    Strict: whitespace, ``!~``, ``==``, braces, trailing commas and duplicate names with the
    same operator are refused rather than guessed at.
    """
    if not text:
        raise MatcherError("no matchers given")
    matchers: list[Matcher] = []
    i = 0
    while True:
        name = LABEL_NAME.match(text, i)
        if name is None:
            raise MatcherError(f"expected a label name at position {i + 1}")
        i = name.end()
        op: Operator
        if text.startswith("=~", i):
            op, i = "=~", i + 2
        elif text.startswith("!=", i):
            op, i = "!=", i + 2
        elif text.startswith("=", i) and not text.startswith("==", i):
            op, i = "=", i + 1
        else:
            raise MatcherError(f"after {name.group()!r} expected one of =, != or =~")
        value, i = _value(text, i)
        if op == "=~":
            try:
                re.compile(value)
            except re.error as exc:
                raise MatcherError(f"{name.group()}: bad regular expression ({exc})") from exc
        try:
            matchers.append(Matcher(name=name.group(), op=op, value=value))
        except ValidationError as exc:
            raise MatcherError(f"{name.group()}: {exc.errors()[0]['msg']}") from exc
        if len(matchers) > MAX_MATCHERS:
            raise MatcherError(f"more than {MAX_MATCHERS} matchers")
        if i == len(text):
            break
        if text[i] != "," or i + 1 == len(text):
            raise MatcherError(f"expected ',' and another matcher at position {i + 1}")
        i += 1
    check_matchers(matchers)
    return matchers


def check_matchers(matchers: list[Matcher]) -> None:
    """Refuse sets Alertmanager would refuse, or that would silence everything."""
    if not matchers:
        raise MatcherError("no matchers given")
    seen = {(m.name, m.op) for m in matchers}
    if len(seen) != len(matchers):
        raise MatcherError("a label is matched twice with the same operator")
    if not any(_excludes_empty(m) for m in matchers):
        raise MatcherError(
            "at least one matcher must not match an empty label (it would silence everything)"
        )


def _excludes_empty(m: Matcher) -> bool:
    if m.op == "=":
        return m.value != ""
    if m.op == "!=":
        return m.value == ""
    return re.fullmatch(m.value, "") is None


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
