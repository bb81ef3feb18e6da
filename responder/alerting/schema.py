"""The alert definition language (``apiVersion: responder/v1``, one definition per file).

A definition is what a Prometheus alerting rule says, in the runbooks' conventions: the
same apiVersion, unknown keys refused, durations with their unit, PromQL checked by the
real parser, and value-only templates (``{{ labels.NAME }}``) for its labels and
annotations, rendered from the labels of each series the expression returns. The worker
evaluates definitions itself (``responder.alerting.rule``), so an alert fires even when
the path Prometheus -> Alertmanager -> webhook is down.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

import promql_parser
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, field_validator
from pydantic_core import PydanticCustomError

from responder.actions.params import Duration, pattern_check
from responder.runbooks.promql import PromQLError, parse_promql
from responder.runbooks.schema import LabelName, label_name
from responder.runbooks.templates import Template, TemplateSyntaxError, parse_template

__all__ = ["AlertDefinition", "Severity", "render_all"]

Severity = Literal["critical", "warning", "info"]

DefinitionName = Annotated[
    str,
    pattern_check(
        r"[A-Za-z_][A-Za-z0-9_]{0,127}",
        "an alert name (letters, digits and '_', not starting with a digit)",
        max_length=128,
    ),
]

RESERVED_LABELS = frozenset({"alertname", "severity"})
"""Set by the definition's own fields (``name``, ``severity``), never by ``labels``."""

MIN_INTERVAL = timedelta(seconds=1)


def _promql(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("promql", "must be a non-empty PromQL expression")
    try:
        expr = parse_promql(value)
    except PromQLError as err:
        raise PydanticCustomError("promql", "{err}", {"err": str(err)}) from None
    if isinstance(expr, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        raise PydanticCustomError(
            "promql", "a range vector cannot be an alert condition: wrap it, e.g. rate(...)"
        )
    if isinstance(expr, promql_parser.StringLiteral):
        raise PydanticCustomError("promql", "a string cannot be an alert condition")
    return value


PromQLExpr = Annotated[str, PlainValidator(_promql)]


def _label_template(value: object) -> Template:
    """A value-only template that may name only the series' labels."""
    if isinstance(value, Template):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "template", "must be a string: quote {got}", {"got": ascii(value)}
        )
    try:
        template = parse_template(value)
    except TemplateSyntaxError as err:
        raise PydanticCustomError("template", "{err}", {"err": str(err)}) from None
    for ref in template.refs:
        if ref.source != "labels":
            raise PydanticCustomError(
                "template",
                "{{ {ref} }}: only {{ labels.NAME }} here (the series' labels)",
                {"ref": str(ref)},
            )
    return template


def _own_label(value: object) -> str:
    """A label name ``labels`` may set: not one the definition's own fields set."""
    name = label_name(value)
    if name in RESERVED_LABELS:
        field = "name" if name == "alertname" else "severity"
        raise PydanticCustomError(
            "reserved_label",
            "{name} is set by the definition's {field}, not in labels",
            {"name": name, "field": field},
        )
    if name.startswith("__"):
        raise PydanticCustomError(
            "reserved_label", "{name}: names starting with '__' are Prometheus' own", {"name": name}
        )
    return name


OwnLabelName = Annotated[str, PlainValidator(_own_label)]

LabelTemplate = Annotated[
    Template, PlainValidator(_label_template), PlainSerializer(lambda t: t.text)
]


class AlertDefinition(BaseModel):
    """One alert definition file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    api_version: Literal["responder/v1"] = Field(alias="apiVersion")
    name: DefinitionName
    """The alert's ``alertname``, as a Prometheus rule's ``alert:`` is."""
    description: str = ""
    expr: PromQLExpr
    """Every series the expression returns is an alert (pending, then firing)."""
    for_: Duration = Field(timedelta(0), alias="for")
    """How long the condition must hold before the alert fires (0s: at once)."""
    interval: Duration = timedelta(seconds=30)
    """How often the worker evaluates ``expr``."""
    keep_firing_for: Duration = timedelta(0)
    """How long a firing alert keeps firing once the condition stopped holding."""
    severity: Severity
    labels: dict[OwnLabelName, LabelTemplate] = Field(default_factory=dict)
    annotations: dict[LabelName, LabelTemplate] = Field(default_factory=dict)
    context: bool = False
    """Whether the page carries context (named queries, recommended actions)."""

    @field_validator("for_", "keep_firing_for")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise PydanticCustomError("duration", "must not be negative")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < MIN_INTERVAL:
            raise PydanticCustomError("interval", "must be at least 1s")
        return value


def render_all(templates: dict[str, Template], series: dict[str, str]) -> dict[str, str]:
    """Each template rendered from the series' labels; an absent label renders empty (as
    Prometheus renders a missing ``$labels.x``), and the value is never interpreted."""
    return {
        name: template.render_with(series.get(ref.name, "") for ref in template.refs)
        for name, template in templates.items()
    }
