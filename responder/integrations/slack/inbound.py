"""Slack in: verify a request came from Slack, then read a slash command or a button press.

Every request is checked with ``slack_sdk.signature.SignatureVerifier`` (v0 HMAC over
``v0:timestamp:body``, timestamps within 5 minutes) on an injectable clock; a
signature seen before is a replay unless Slack marks it as its own retry
(``X-Slack-Retry-Num``), and retries are duplicates either way. The command text is
untrusted: it is split on whitespace (no shell quoting, no globbing), every word is
checked against the strict patterns of ``responder.models.commands``, and nothing
from it ever becomes a shell command or a path.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Collection, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from slack_sdk.signature import Clock as SdkClock
from slack_sdk.signature import SignatureVerifier

from responder.clock import Clock, SystemClock
from responder.integrations.seen import SeenCache
from responder.integrations.slack.blocks import (
    ACTION_ACK,
    ACTION_APPROVE,
    ACTION_ESCALATE,
    ACTION_REJECT,
    ACTION_RESOLVE,
)
from responder.models.commands import (
    Actor,
    Command,
    CommandKind,
    CommandSource,
    is_incident_id,
)
from responder.models.matchers import MatcherError, parse_matchers

MAX_AGE_S = 300
"""Slack's documented window; SignatureVerifier hard-codes the same five minutes."""

MAX_TEXT = 500
MAX_WORDS = 24


class Verdict(StrEnum):
    VALID = "valid"
    RETRY = "retry"
    """Authentic, but Slack says it is a retry of a request we already got: a duplicate."""
    UNSIGNED = "unsigned"
    STALE = "stale"
    FORGED = "forged"
    REPLAYED = "replayed"


class _ClockAdapter(SdkClock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now()


class SlackRequestVerifier:
    """Signature, age and replay checks for one Slack app."""

    def __init__(
        self,
        signing_secret: SecretStr,
        *,
        clock: Clock | None = None,
        replay_window_s: float = 330.0,
        replay_cache_max: int = 100_000,
    ) -> None:
        self._clock = clock or SystemClock()
        self._verifier = SignatureVerifier(
            signing_secret.get_secret_value(), clock=_ClockAdapter(self._clock)
        )
        self._seen = SeenCache(
            ttl_s=replay_window_s, max_entries=replay_cache_max, clock=self._clock
        )

    def check(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp or not signature:
            return Verdict.UNSIGNED
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return Verdict.FORGED
        if abs(self._clock.now() - int(timestamp)) > MAX_AGE_S:
            return Verdict.STALE
        try:
            valid = self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except UnicodeDecodeError:  # the SDK decodes the body as UTF-8 before hashing
            return Verdict.FORGED
        if not valid:
            return Verdict.FORGED
        is_retry = headers.get("X-Slack-Retry-Num") is not None
        if signature in self._seen:
            return Verdict.RETRY if is_retry else Verdict.REPLAYED
        self._seen.add(signature)
        return Verdict.RETRY if is_retry else Verdict.VALID


def parse_form(body: bytes) -> dict[str, str]:
    """``application/x-www-form-urlencoded`` body -> first value of each field."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("body is not UTF-8") from exc
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=64)
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


class SlashCommandForm(BaseModel):
    """The fields of a slash command request we use (Slack sends more)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str
    text: str = Field("", max_length=4000)
    user_id: str = Field(min_length=1, max_length=64)
    user_name: str = Field("", max_length=128)
    team_id: str = Field("", max_length=64)
    channel_id: str = Field("", max_length=64)
    response_url: str = Field("", max_length=1024)
    trigger_id: str = Field("", max_length=200)


class ReadVerb(StrEnum):
    HELP = "help"
    LIST = "list"
    SHOW = "show"


class ReadRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    verb: ReadVerb
    incident_id: str | None = None


class CommandDraft(BaseModel):
    """A mutating command as parsed, before we know who sent it."""

    model_config = ConfigDict(frozen=True)

    kind: CommandKind
    fields: dict[str, Any]

    @property
    def incident_id(self) -> str | None:
        value = self.fields.get("incident_id")
        return value if isinstance(value, str) else None

    def to_command(
        self,
        *,
        actor: Actor,
        source: CommandSource,
        idempotency_key: str,
        issued_at: datetime,
        reply_to: str | None,
    ) -> Command:
        return Command(
            kind=self.kind,
            actor=actor,
            source=source,
            idempotency_key=idempotency_key,
            issued_at=issued_at,
            reply_to=reply_to,
            **self.fields,
        )


class ParseFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    message: str


USAGE = """*Usage:* `/responder <command>`
• `list`: open incidents
• `show ID`: one incident
• `ack ID`, `resolve ID`, `escalate ID`
• `approve ID`, `reject ID`: the step waiting for approval
• `run ACTION NAMESPACE/NAME [key=value …] [--apply]`: dry-run unless `--apply`
• `silence MATCHER[,MATCHER…] DURATION`: matchers `label=value`, `label!=value` or `label=~"regex"`; duration e.g. `30m`, `2h`, `1d`
• `help`"""

_INCIDENT_VERBS = {
    "ack": CommandKind.ACK,
    "resolve": CommandKind.RESOLVE,
    "approve": CommandKind.APPROVE,
    "reject": CommandKind.REJECT,
    "escalate": CommandKind.ESCALATE,
}
_DURATION_RE = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int | None:
    match = _DURATION_RE.fullmatch(text)
    return int(match.group(1)) * _UNIT_S[match.group(2)] if match else None


def _pairs(words: list[str], what: str) -> dict[str, str] | ParseFailure:
    result: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key or not value:
            return ParseFailure(message=f"expected {what} as `key=value`, got `{_quote(word)}`")
        if key in result:
            return ParseFailure(message=f"`{_quote(key)}` given twice")
        result[key] = value
    return result


def _quote(text: str) -> str:
    """Echo untrusted text back safely: short, no backticks or Slack control characters."""
    cleaned = "".join(c for c in text[:40] if c.isprintable() and c not in "`<>&*_~")
    return cleaned or "?"


def _checked(kind: CommandKind, fields: dict[str, Any]) -> CommandDraft | ParseFailure:
    """Validate the fields now (with a placeholder sender) so the user hears what is wrong."""
    try:
        Command(
            kind=kind,
            actor=Actor(id="parse-check"),
            source=CommandSource.SLACK_COMMAND,
            idempotency_key="parse-check",
            issued_at=datetime(2000, 1, 1),
            **fields,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or kind.value}: {e['msg']}" for e in exc.errors()
        )
        return ParseFailure(message=f"`{kind.value}`: {problems}")
    return CommandDraft(kind=kind, fields=fields)


def parse_command_text(
    text: str, *, known_actions: Collection[str] | None = None
) -> ReadRequest | CommandDraft | ParseFailure:
    """``/responder`` text -> what to do. Never raises on user input.

    ``known_actions`` is the action catalogue's names; a ``run`` of anything else is refused
    here rather than by the engine, so the person hears it at once.
    """
    if len(text) > MAX_TEXT:
        return ParseFailure(message=f"command longer than {MAX_TEXT} characters")
    words = text.split()
    if len(words) > MAX_WORDS:
        return ParseFailure(message=f"more than {MAX_WORDS} words")
    if not words or words[0].lower() == "help":
        return ReadRequest(verb=ReadVerb.HELP)
    verb, args = words[0].lower(), words[1:]
    if verb == "list":
        return (
            ReadRequest(verb=ReadVerb.LIST)
            if not args
            else ParseFailure(message="`list` takes no arguments")
        )
    if verb == "show" or verb in _INCIDENT_VERBS:
        if len(args) != 1:
            return ParseFailure(message=f"`{verb}` takes exactly one incident id")
        if not is_incident_id(args[0]):
            return ParseFailure(message=f"`{_quote(args[0])}` is not an incident id")
        if verb == "show":
            return ReadRequest(verb=ReadVerb.SHOW, incident_id=args[0])
        return _checked(_INCIDENT_VERBS[verb], {"incident_id": args[0]})
    if verb == "run":
        apply = "--apply" in args
        rest = [a for a in args if a != "--apply"]
        if len(rest) < 2:
            return ParseFailure(message="`run` needs an ACTION and a NAMESPACE/NAME target")
        if any(a.startswith("-") for a in rest):
            return ParseFailure(message="the only flag `run` knows is `--apply`")
        if known_actions is not None and rest[0] not in known_actions:
            return ParseFailure(message=f"unknown action `{_quote(rest[0])}`")
        params = _pairs(rest[2:], "parameters")
        if isinstance(params, ParseFailure):
            return params
        return _checked(
            CommandKind.RUN,
            {"action": rest[0], "target": rest[1], "params": params, "apply": apply},
        )
    if verb == "silence":
        if len(args) != 2:
            return ParseFailure(message="`silence` needs MATCHERS and a DURATION")
        try:
            matchers = parse_matchers(args[0])
        except MatcherError as exc:
            return ParseFailure(message=f"Bad matchers: {_quote(str(exc))}")
        duration = parse_duration(args[1])
        if duration is None:
            return ParseFailure(message=f"`{_quote(args[1])}` is not a duration like 30m, 2h, 1d")
        return _checked(CommandKind.SILENCE, {"matchers": matchers, "duration_s": duration})
    return ParseFailure(message=f"unknown command `{_quote(verb)}`")


class InteractionUser(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    username: str = Field("", max_length=128)
    name: str = Field("", max_length=128)


class InteractionAction(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    action_id: str = Field(max_length=255)
    value: str = Field("", max_length=2000)
    block_id: str = Field("", max_length=255)
    action_ts: str = Field("", max_length=64)


class BlockActionsPayload(BaseModel):
    """The ``payload`` JSON of a ``block_actions`` interaction (button press)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    user: InteractionUser
    actions: list[InteractionAction] = Field(min_length=1, max_length=5)
    response_url: str = Field("", max_length=1024)
    trigger_id: str = Field("", max_length=200)
    container: dict[str, Any] = Field(default_factory=dict)


BUTTON_COMMANDS: dict[str, CommandKind] = {
    ACTION_ACK: CommandKind.ACK,
    ACTION_APPROVE: CommandKind.APPROVE,
    ACTION_REJECT: CommandKind.REJECT,
    ACTION_ESCALATE: CommandKind.ESCALATE,
    ACTION_RESOLVE: CommandKind.RESOLVE,
}


def parse_interaction(form: Mapping[str, str]) -> BlockActionsPayload | ParseFailure:
    raw = form.get("payload")
    if raw is None:
        return ParseFailure(message="no payload field")
    try:
        payload = BlockActionsPayload.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return ParseFailure(message="payload is not a block_actions interaction")
    if payload.type != "block_actions":
        return ParseFailure(message=f"interaction type {_quote(payload.type)} is not handled")
    return payload


def button_draft(action: InteractionAction) -> CommandDraft | ParseFailure:
    """A button press -> the command it stands for (its value is ``ID`` or ``ID@STEP``)."""
    kind = BUTTON_COMMANDS.get(action.action_id)
    if kind is None:
        return ParseFailure(message=f"unknown button {_quote(action.action_id)}")
    incident_id, at, step = action.value.partition("@")
    fields: dict[str, Any] = {"incident_id": incident_id}
    if at:
        if not step.isdigit() or len(step) > 4:
            return ParseFailure(message="button value has a bad step")
        fields["step"] = int(step)
    if not is_incident_id(incident_id):
        return ParseFailure(message="button value is not an incident id")
    return _checked(kind, fields)
