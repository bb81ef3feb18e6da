"""Alertmanager matchers, as people type them in ``/responder silence MATCHERS DURATION``.

Matchers come from Slack text, so they are parsed strictly: label names as Prometheus
spells them, operators ``=``, ``!=`` and ``=~`` only, values quoted or bare, and anything
else refused with a sentence saying what is wrong. A regular expression is compiled here
before Alertmanager sees it. Parsed where the text arrives (the Slack adapter), carried on
the command as ``Matcher`` models, checked again where the silence is made.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
