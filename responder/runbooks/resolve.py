"""From an alert to (runbook, validated target, incident key): the pure function triage calls.

The result is a value, never an exception and never a side effect: ``Matched``
carries a target whose every Kubernetes name passed the RFC 1123 check after
substitution; ``InvalidTarget`` says which value failed and why, so the engine
can audit it and escalate instead of calling anything; ``NoMatch`` means no
runbook applies. The incident key is ``<runbook id>:<namespace>/<name>``, so all
alerts about one workload under one runbook join one incident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from responder.actions.params import is_dns_label
from responder.errors import ConfigError
from responder.models.alerts import IncidentKeyer, incident_key
from responder.runbooks.promql import PromQLRenderError, render_promql
from responder.runbooks.schema import Runbook, Step, TargetSpec
from responder.runbooks.templates import MissingValue, Template

if TYPE_CHECKING:
    from responder.runbooks.catalog import RunbookSet

__all__ = [
    "InvalidTarget",
    "Matched",
    "NoMatch",
    "Resolution",
    "ResolvedTarget",
    "incident_key_for",
    "render_verify_promql",
    "resolve",
    "resolve_target",
]

TargetField = Literal["namespace", "name", "region"]


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A workload whose namespace, name (and region) are valid RFC 1123 labels."""

    namespace: str
    kind: str
    name: str
    region: str | None = None

    @property
    def key(self) -> str:
        """``namespace/name``: what guard rails (one incident per target, cooldown) key on."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Matched:
    runbook: Runbook
    target: ResolvedTarget
    incident_key: str


@dataclass(frozen=True, slots=True)
class InvalidTarget:
    """A runbook matched but a target value failed: audit it and escalate, call nothing."""

    runbook: Runbook
    field: TargetField
    reason: str
    incident_key: str
    """Stable per (runbook, offending values), so a storm of such alerts is still one incident."""


@dataclass(frozen=True, slots=True)
class NoMatch:
    alertname: str


Resolution = Matched | InvalidTarget | NoMatch


def _render_name(
    field_name: TargetField,
    template: Template,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> str | tuple[TargetField, str]:
    """The rendered, checked value, or (field, reason) when it cannot be used."""
    try:
        value = template.render(labels, annotations)
    except MissingValue as missing:
        return field_name, f"{missing.ref} is absent or empty"
    if not is_dns_label(value):
        shown = ascii(value[:80]) + ("..." if len(value) > 80 else "")
        return field_name, f"{shown} is not a valid RFC 1123 name"
    return value


def resolve_target(
    spec: TargetSpec, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> ResolvedTarget | tuple[TargetField, str]:
    """Render and check every target value; (field, reason) for the first that fails."""
    namespace = _render_name("namespace", spec.namespace, labels, annotations)
    if isinstance(namespace, tuple):
        return namespace
    name = _render_name("name", spec.name, labels, annotations)
    if isinstance(name, tuple):
        return name
    region: str | None = None
    if spec.region is not None:
        rendered = _render_name("region", spec.region, labels, annotations)
        if isinstance(rendered, tuple):
            return rendered
        region = rendered
    return ResolvedTarget(namespace=namespace, kind=spec.kind, name=name, region=region)


def _invalid_key(
    runbook: Runbook, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> str:
    digest = hashlib.sha256()
    for template in (runbook.target.namespace, runbook.target.name, runbook.target.region):
        for ref in () if template is None else template.refs:
            source = labels if ref.source == "labels" else annotations
            digest.update(f"{ref}={source.get(ref.name, '')}\0".encode())
    return f"{runbook.id}:invalid-target/{digest.hexdigest()[:16]}"


def resolve(
    labels: Mapping[str, str], annotations: Mapping[str, str], runbooks: RunbookSet
) -> Resolution:
    """The runbook for this alert, its validated target and incident key; or why not."""
    runbook = runbooks.matcher.match(labels)
    if runbook is None:
        return NoMatch(alertname=labels.get("alertname", ""))
    target = resolve_target(runbook.target, labels, annotations)
    if not isinstance(target, ResolvedTarget):
        field_name, reason = target
        return InvalidTarget(
            runbook=runbook,
            field=field_name,
            reason=reason,
            incident_key=_invalid_key(runbook, labels, annotations),
        )
    return Matched(runbook=runbook, target=target, incident_key=f"{runbook.id}:{target.key}")


def render_verify_promql(
    step: Step, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> str | None:
    """The step's verify query with escaped label values; None if it has no PromQL check.

    Raises templates.MissingValue when a referenced label is absent (the engine then
    treats the verification as failed), PromQLRenderError if a value cannot be rendered.
    """
    verify = step.verify
    if verify is None or verify.promql is None:
        return None
    return render_promql(verify.promql, labels, annotations)


# Errors render_verify_promql may raise, for callers that catch them together.
RenderErrors = (MissingValue, PromQLRenderError)


def incident_key_for(
    labels: Mapping[str, str], annotations: Mapping[str, str], runbooks: RunbookSet
) -> str | None:
    """The incident key a runbook gives this alert (runbook id + target), or None when no
    runbook matches. Ingest keys its Kafka messages with it, so every alert of one incident
    lands on one partition, where triage folds them into that incident."""
    resolution = resolve(labels, annotations, runbooks)
    return None if isinstance(resolution, NoMatch) else resolution.incident_key


def runbook_keyer(current: Callable[[], RunbookSet]) -> IncidentKeyer:
    """The incident key of an alert under the runbook set ``current()`` returns at the time:
    the runbook's (runbook id + target), else the label key. Ingest keys webhook alerts with
    it, the metric-streams evaluator the alerts it emits, so both paths meet in one incident.
    ``current`` raising ``ConfigError`` (never loaded) means no runbook set: the label key."""

    def key(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
        try:
            runbooks = current()
        except ConfigError:
            return incident_key(labels)
        return incident_key_for(labels, annotations, runbooks) or incident_key(labels)

    return key
