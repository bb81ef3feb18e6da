"""The runbook language (``apiVersion: responder/v1``) as pydantic models.

These models are the single definition of what a runbook may say: the loader
feeds them the YAML, the matcher compiles their ``match``, the engine reads their
steps and escalation. Every model forbids unknown keys, so a misspelt
``timeout`` is an error rather than a silently ignored line. Checks that span
several fields (unreachable steps, escalation with ``auto_recovery: false``) are
in ``semantic_problems`` so that the loader can report all of them at once with
their own key paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from responder.actions.params import (
    ACTION_PARAMS,
    DNS_LABEL_MAX,
    ActionParams,
    Duration,
    Port,
    RefName,
    RelativePath,
    SlackChannel,
    is_dns_label,
    parse_duration,
    pattern_check,
)
from responder.runbooks.promql import PromQLError, parse_promql_template
from responder.runbooks.templates import Template, TemplateSyntaxError, parse_template
from responder.verification.probe import DEGRADED, PROBE_PATH, ProbeVerdict

__all__ = [
    "Absent",
    "Condition",
    "Equals",
    "Escalation",
    "EscalationLevel",
    "HTTPCheck",
    "MaxActions",
    "OneOf",
    "PagerDutyLevel",
    "Present",
    "ProbeCheck",
    "Regex",
    "Repeat",
    "Runbook",
    "SlackLevel",
    "Step",
    "TargetSpec",
    "Verify",
    "semantic_problems",
]

API_VERSION = "responder/v1"
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


StepName = Annotated[
    str,
    pattern_check(
        r"[a-z0-9][a-z0-9_-]{0,62}", "a step name (lower-case letters, digits, '_', '-')"
    ),
]
RunbookId = Annotated[
    str,
    pattern_check(
        r"[a-z][a-z0-9_]{0,62}",
        "a runbook id (lower-case letters, digits and '_', starting with a letter)",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


# --- match conditions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Equals:
    """``label: value``: the label has exactly this value."""

    value: str


@dataclass(frozen=True, slots=True)
class OneOf:
    """``label: [a, b]``: the label has one of these values."""

    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class Regex:
    """``label: {regex: "gen-.*"}``: the whole value matches (anchored, compiled once)."""

    pattern: str
    compiled: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Present:
    """``label: {present: true}``: the label is set and not empty."""


@dataclass(frozen=True, slots=True)
class Absent:
    """``label: {absent: true}``: the label is missing or empty (as Prometheus treats empty)."""


Condition = Equals | OneOf | Regex | Present | Absent

_CONDITION_HELP = (
    "must be a string, a list of strings, {regex: ...}, {present: true} or {absent: true}"
)


def _label_value(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "label_value", "label values are strings: quote {got}", {"got": ascii(value)}
        )
    if not value:
        raise PydanticCustomError(
            "label_value", "an empty value means the label is absent: write {absent: true}"
        )
    return value


def parse_condition(value: object) -> Condition:
    """YAML value of one ``match`` entry -> its condition."""
    if isinstance(value, Equals | OneOf | Regex | Present | Absent):
        return value
    if isinstance(value, list):
        if not value:
            raise PydanticCustomError("condition", "an empty list can never match")
        values = [_label_value(item) for item in value]
        return Equals(values[0]) if len(values) == 1 else OneOf(frozenset(values))
    if isinstance(value, dict):
        if len(value) != 1:
            raise PydanticCustomError("condition", _CONDITION_HELP)
        ((key, arg),) = value.items()
        if key == "regex":
            pattern = _label_value(arg)
            try:
                re.compile(pattern)  # errors with positions in the author's own text
                compiled = re.compile(f"(?:{pattern})")
            except re.error as err:
                raise PydanticCustomError(
                    "regex", "invalid regular expression: {err}", {"err": str(err)}
                ) from None
            return Regex(pattern, compiled)
        if key in ("present", "absent"):
            if arg is not True:
                raise PydanticCustomError(
                    "condition",
                    "write {key}: true (use the other form for the opposite)",
                    {"key": key},
                )
            return Present() if key == "present" else Absent()
        raise PydanticCustomError("condition", _CONDITION_HELP)
    return Equals(_label_value(value))


def _dump_condition(condition: Condition) -> object:
    if isinstance(condition, Equals):
        return condition.value
    if isinstance(condition, OneOf):
        return sorted(condition.values)
    if isinstance(condition, Regex):
        return {"regex": condition.pattern}
    return {"present": True} if isinstance(condition, Present) else {"absent": True}


ConditionField = Annotated[
    Condition, PlainValidator(parse_condition), PlainSerializer(_dump_condition)
]


def label_name(value: object) -> str:
    """A Prometheus label name, or the error that says it is not one."""
    if not isinstance(value, str) or not LABEL_NAME.fullmatch(value):
        raise PydanticCustomError(
            "label_name", "{got} is not a Prometheus label name", {"got": ascii(value)}
        )
    return value


LabelName = Annotated[str, PlainValidator(label_name)]


# --- templated values -----------------------------------------------------------------------


def _name_template(value: object) -> Template:
    """A template whose rendered value must be an RFC 1123 label."""
    if isinstance(value, Template):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("template", "must be a string")
    try:
        template = parse_template(value)
    except TemplateSyntaxError as err:
        raise PydanticCustomError("template", "{err}", {"err": str(err)}) from None
    if template.is_static:
        if not is_dns_label(value):
            raise PydanticCustomError(
                "dns_label",
                "{got} is not a valid RFC 1123 name (lower-case letters, digits and '-', "
                "starting and ending with a letter or digit, at most 63 characters)",
                {"got": ascii(value[:80])},
            )
        return template
    literal = template.literal
    bad = sorted(
        {char for char in literal if not ("a" <= char <= "z" or "0" <= char <= "9" or char == "-")}
    )
    if bad:
        raise PydanticCustomError(
            "dns_label",
            "can never be a valid RFC 1123 name: the literal text contains {chars}",
            {"chars": ", ".join(ascii(char) for char in bad)},
        )
    if len(literal) + len(template.refs) > DNS_LABEL_MAX:
        raise PydanticCustomError(
            "dns_label", "can never be a valid RFC 1123 name: longer than 63 characters"
        )
    return template


NameTemplate = Annotated[
    Template, PlainValidator(_name_template), PlainSerializer(lambda t: t.text)
]


def _promql(value: object) -> Template:
    if isinstance(value, Template):
        return value
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("promql", "must be a non-empty PromQL expression")
    try:
        return parse_promql_template(value)
    except (TemplateSyntaxError, PromQLError) as err:
        raise PydanticCustomError("promql", "{err}", {"err": str(err)}) from None


PromQLTemplate = Annotated[Template, PlainValidator(_promql), PlainSerializer(lambda t: t.text)]


# --- the runbook ---------------------------------------------------------------------------------


class TargetSpec(_Strict):
    """The workload the actions touch; each value rendered from the alert, then checked."""

    namespace: NameTemplate
    kind: Literal["Deployment", "StatefulSet", "Service"] = "Deployment"
    name: NameTemplate
    region: NameTemplate | None = None


class HTTPCheck(_Strict):
    """GET a path on an allow-listed base URL and expect one of the statuses."""

    base: RefName
    path: RelativePath
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=lambda: [200], min_length=1
    )


ProbeStyle = Annotated[
    str, pattern_check(r"[a-z0-9][a-z0-9_-]{0,31}", "a style name (lower-case letters, digits)")
]
Degraded = Literal["quality_degraded", "latency_degraded"]


class ProbeCheck(_Strict):
    """A test generation on the engine (the design's health check), judged by thresholds.

    The call goes to every ready pod behind the Service named like the target, on ``port``
    (as ``model.reload`` reaches them), or, with ``base``, to an allow-listed base URL.
    Healthy holds; a degraded verdict holds only if ``accept`` names it; failed never does.
    """

    base: RefName | None = None
    port: Port = 8080
    path: RelativePath = PROBE_PATH
    complexity: float = Field(0.5, ge=0.0, le=1.0)
    style: ProbeStyle = "test"
    min_confidence: float = Field(0.7, ge=0.0, le=1.0)
    max_latency_ms: float = Field(200.0, gt=0.0, le=60_000.0)
    accept: list[Degraded] = Field(default_factory=list)

    @model_validator(mode="after")
    def _base_or_pods(self) -> ProbeCheck:
        if self.base is not None and "port" in self.model_fields_set:
            raise PydanticCustomError(
                "exclusive", "port is for the target's pods; a base URL carries its own port"
            )
        return self

    @property
    def accepted(self) -> frozenset[ProbeVerdict]:
        return frozenset(ProbeVerdict(name) for name in self.accept) & DEGRADED


class Verify(_Strict):
    """How the engine decides a step worked: exactly one of promql, http, probe, alert_resolved."""

    promql: PromQLTemplate | None = None
    http: HTTPCheck | None = None
    probe: ProbeCheck | None = None
    alert_resolved: bool = False
    within: Duration = timedelta(minutes=2)
    every: Duration = timedelta(seconds=15)

    @model_validator(mode="after")
    def _one_kind(self) -> Verify:
        kinds = (
            (self.promql is not None)
            + (self.http is not None)
            + (self.probe is not None)
            + self.alert_resolved
        )
        if kinds != 1:
            raise PydanticCustomError(
                "one_of", "set exactly one of promql, http, probe or alert_resolved: true"
            )
        if self.every > self.within or self.within <= timedelta(0):
            raise PydanticCustomError("window", "within must be > 0s and ≥ every")
        return self

    @property
    def kind(self) -> Literal["promql", "http", "probe", "alert_resolved"]:
        if self.promql is not None:
            return "promql"
        if self.http is not None:
            return "http"
        return "probe" if self.probe is not None else "alert_resolved"


class Step(_Strict):
    """One remediation step: an action from the catalogue, its parameters, and how to verify it."""

    name: StepName | None = None
    action: str
    params: SerializeAsAny[ActionParams] = Field(
        alias="with", default_factory=ActionParams, validate_default=True
    )
    timeout: Duration = timedelta(seconds=60)
    retries: int = Field(0, ge=0, le=10)
    approval: Literal["required", "none"] = "none"
    verify: Verify | None = None
    on_failure: Literal["next", "escalate"] = "next"

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        if value not in ACTION_PARAMS:
            raise PydanticCustomError(
                "unknown_action",
                "unknown action {got}; known: {known}",
                {"got": ascii(value), "known": ", ".join(sorted(ACTION_PARAMS))},
            )
        return value

    @field_validator("params", mode="wrap")
    @classmethod
    def _params_of_action(cls, value: Any, handler: Any, info: ValidationInfo) -> ActionParams:
        if isinstance(value, ActionParams) and type(value) is not ActionParams:
            return value
        model = ACTION_PARAMS.get(str(info.data.get("action")))
        if model is None:
            # The action itself is wrong (reported on `action`); nothing to check against.
            return ActionParams()
        if value is None or type(value) is ActionParams:
            value = {}
        return model.model_validate(value)

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise PydanticCustomError("timeout", "must be more than 0s")
        return value

    @property
    def effective_verify(self) -> Verify:
        """Without ``verify`` a step has worked when the alert resolves within its timeout."""
        if self.verify is not None:
            return self.verify
        every = min(timedelta(seconds=15), self.timeout)
        return Verify(alert_resolved=True, within=self.timeout, every=every)

    def label(self, index: int) -> str:
        return self.name or f"{index + 1}-{self.action}"


class MaxActions(_Strict):
    """At most ``count`` actions per target in any ``per`` window."""

    count: int = Field(ge=1, le=1000)
    per: Duration


class SlackLevel(_Strict):
    """Post to a Slack channel."""

    notify: Literal["slack"]
    channel: SlackChannel
    wait: Duration = timedelta(0)


class PagerDutyLevel(_Strict):
    """Trigger PagerDuty through a routing key held in the settings (named, never inline)."""

    notify: Literal["pagerduty"]
    routing_key_ref: RefName
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    wait: Duration = timedelta(0)


EscalationLevel = Annotated[SlackLevel | PagerDutyLevel, Field(discriminator="notify")]


class Repeat(_Strict):
    """Repeat the last level every ``every`` until acknowledged (at most ``times`` if set)."""

    every: Duration
    times: int | None = Field(None, ge=1, le=100)

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise PydanticCustomError("repeat", "must be at least 1m")
        return value


class Escalation(_Strict):
    """Who hears about it, and when: ``after`` from opening, then each level's ``wait``."""

    after: Duration
    chain: list[EscalationLevel] = Field(min_length=1)
    repeat: Repeat | None = None

    def deadlines(self) -> list[timedelta]:
        """Offset of each level from the incident's opening."""
        offsets: list[timedelta] = []
        at = self.after
        for level in self.chain:
            at += level.wait
            offsets.append(at)
        return offsets


class Runbook(_Strict):
    """One runbook file."""

    api_version: Literal["responder/v1"] = Field(alias="apiVersion")
    id: RunbookId
    description: str = ""
    priority: int = Field(0, ge=-1000, le=1000)
    match: dict[LabelName, ConditionField]
    target: TargetSpec
    auto_recovery: bool = True
    dry_run: bool = False
    cooldown: Duration = timedelta(minutes=10)
    max_actions: MaxActions = MaxActions(count=6, per=parse_duration("1h"))
    steps: list[Step] = Field(default_factory=list)
    escalation: Escalation


def semantic_problems(runbook: Runbook) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field problems as (key path, message), all of them."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    seen: dict[str, int] = {}
    for index, step in enumerate(runbook.steps):
        if step.name is not None:
            if step.name in seen:
                problems.append(
                    (
                        ("steps", index, "name"),
                        f"duplicate step name (also steps[{seen[step.name]}])",
                    )
                )
            seen.setdefault(step.name, index)
    if not runbook.auto_recovery:
        if runbook.escalation.after != timedelta(0):
            problems.append(
                (
                    ("escalation", "after"),
                    "must be 0s when auto_recovery is false (escalate at once)",
                )
            )
        for index, step in enumerate(runbook.steps):
            if step.approval != "required":
                problems.append(
                    (
                        ("steps", index),
                        "unreachable: auto_recovery is false, so only steps with approval: required can run",
                    )
                )
    elif not runbook.steps:
        problems.append((("steps",), "no steps: set auto_recovery: false to escalate at once"))
    for index, step in enumerate(runbook.steps[:-1]):
        if step.on_failure == "escalate":
            problems.append(
                (
                    ("steps", index + 1),
                    f"unreachable: steps[{index}] escalates on failure and success resolves the incident",
                )
            )
            break
    return problems
