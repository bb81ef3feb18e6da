"""Commands people give the responder: the messages on ``responder.commands``.

Slack buttons, the ``/responder`` slash command and PagerDuty webhooks all end up
as one of these, so the remediation engine has a single, validated input to obey
whatever the channel. Everything here comes from untrusted text at some point:
incident ids, action names, targets and parameters are checked against strict
patterns at construction and never become a shell command or a path.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from responder.models.matchers import MAX_MATCHERS, Matcher, check_matchers

INCIDENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""Incident ids: uuid5 today; letters, digits, ``-`` and ``_`` only (no dots, slashes, spaces)."""

ACTION_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}(?:\.[a-z][a-z0-9_]{0,31}){1,2}")
"""Action names as the catalogue spells them: ``family.verb`` (``deployment.restart``)."""

TARGET_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?"
)
"""``namespace/name``: an RFC 1123 label, a slash, an RFC 1123 subdomain."""

PARAM_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9_.:*/@+-]{1,128}")
"""Parameter values: no spaces, quotes, ``$``, ``;``, backticks or ``..`` (checked apart)."""


MAX_SILENCE_S = 7 * 24 * 3600
"""A week: longer silences belong in Alertmanager, where they are visible to everyone."""


def _full(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"not a valid {what}")
        return value

    return AfterValidator(check)


def _no_dotdot(value: str) -> str:
    if ".." in value:
        raise ValueError("'..' is not allowed in a value")
    return value


IncidentId = Annotated[str, _full(INCIDENT_ID_RE, "incident id")]
ActionName = Annotated[str, _full(ACTION_NAME_RE, "action name")]
TargetRef = Annotated[str, _full(TARGET_RE, "target (namespace/name)")]
ParamKey = Annotated[str, _full(PARAM_KEY_RE, "parameter name")]
ParamValue = Annotated[str, _full(PARAM_VALUE_RE, "parameter value"), AfterValidator(_no_dotdot)]


def is_incident_id(text: str) -> bool:
    """Whether ``text`` is shaped like one of our incident ids (cheap pre-check for parsers)."""
    return INCIDENT_ID_RE.fullmatch(text) is not None


class CommandKind(StrEnum):
    """What the command asks for."""

    ACK = "ack"
    RESOLVE = "resolve"
    APPROVE = "approve"
    REJECT = "reject"
    ESCALATE = "escalate"
    RUN = "run"
    SILENCE = "silence"


INCIDENT_COMMANDS = frozenset(
    {
        CommandKind.ACK,
        CommandKind.RESOLVE,
        CommandKind.APPROVE,
        CommandKind.REJECT,
        CommandKind.ESCALATE,
    }
)
"""Kinds that act on one incident and so need ``incident_id``."""


class CommandSource(StrEnum):
    """The channel the command came through (for audit and for echo suppression)."""

    SLACK_COMMAND = "slack_command"
    SLACK_BUTTON = "slack_button"
    PAGERDUTY = "pagerduty"
    CLI = "cli"


class Actor(BaseModel):
    """Who gave the command, as the source system names them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(max_length=64, description="Slack user id (U…/W…), PagerDuty user id (P…).")
    name: str = Field("", max_length=128, description="Display name, for messages only.")


class Command(BaseModel):
    """One validated instruction to the remediation engine, keyed by its incident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: CommandKind
    idempotency_key: str = Field(
        min_length=1,
        max_length=200,
        description="Same key = same command: retries and redeliveries must not act twice. "
        "Slack: the request's trigger_id; PagerDuty: the webhook event id.",
    )
    actor: Actor
    source: CommandSource
    issued_at: datetime
    incident_id: IncidentId | None = None
    step: int | None = Field(
        None,
        ge=0,
        description="For approve/reject from a button: the step the button was drawn for, so a "
        "stale button cannot approve a later step.",
    )
    action: ActionName | None = None
    target: TargetRef | None = None
    params: dict[ParamKey, ParamValue] = Field(default_factory=dict, max_length=16)
    apply: bool = Field(False, description="run: change things for real; dry-run otherwise.")
    matchers: list[Matcher] = Field(
        default_factory=list,
        max_length=MAX_MATCHERS,
        description="silence: Alertmanager matchers (=, != and =~), parsed strictly from the "
        "typed text and checked: at least one must not match an empty label.",
    )
    duration_s: int | None = Field(None, gt=0, le=MAX_SILENCE_S)
    reason: str = Field("", max_length=500)
    reply_to: str | None = Field(
        None,
        max_length=1024,
        description="Slack response_url to report the outcome on (already checked against the "
        "allowed hosts by the inbound adapter).",
    )

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Command:
        if self.kind in INCIDENT_COMMANDS and self.incident_id is None:
            raise ValueError(f"{self.kind} needs an incident id")
        if self.kind is CommandKind.RUN and (self.action is None or self.target is None):
            raise ValueError("run needs an action and a target")
        if self.kind is CommandKind.SILENCE:
            if not self.matchers or self.duration_s is None:
                raise ValueError("silence needs at least one matcher and a duration")
            check_matchers(self.matchers)
        return self
