"""``responder runbooks explain``: what the responder would do with an alert, and why.

A reviewer of a runbook change (or an on-call engineer at 3 a.m.) wants to see,
for a concrete alert: which runbook wins and on which conditions, which ones
nearly matched, the target after templating, each planned step with its
parameters and rendered verification, and when each escalation level would
fire. This module computes that as plain data from the pure matcher and
resolver; it calls nothing and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from responder.errors import ConfigError
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.matcher import RunbookExplanation, specificity
from responder.runbooks.resolve import (
    InvalidTarget,
    Matched,
    RenderErrors,
    render_verify_promql,
    resolve,
)
from responder.runbooks.schema import PagerDutyLevel, Runbook, SlackLevel, Step

__all__ = ["AlertInput", "explain_alert", "parse_alerts", "render_text"]


class AlertInput(BaseModel):
    """The part of an Alertmanager alert explain needs; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    status: str = "firing"
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = Field(None, alias="startsAt")


def parse_alerts(document: object) -> list[AlertInput]:
    """An Alertmanager webhook payload, a single alert, or a list of alerts."""
    items: object
    if isinstance(document, Mapping) and "alerts" in document:
        items = document["alerts"]
    elif isinstance(document, Mapping):
        items = [document]
    else:
        items = document
    if not isinstance(items, list) or not items:
        raise ConfigError("expected an Alertmanager payload, an alert, or a list of alerts")
    alerts: list[AlertInput] = []
    for index, item in enumerate(items):
        try:
            alerts.append(AlertInput.model_validate(item))
        except ValidationError as err:
            problem = err.errors(include_url=False)[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise ConfigError(f"alerts[{index}].{where}: {problem['msg']}") from None
    return alerts


def human(duration: timedelta) -> str:
    """``timedelta(seconds=330)`` -> ``5m30s``."""
    seconds = int(duration.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{seconds}s" if seconds or not text else "")


def _verdict(verdict: RunbookExplanation, sources: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": verdict.runbook.id,
        "file": sources.get(verdict.runbook.id, ""),
        "priority": verdict.runbook.priority,
        "specificity": specificity(verdict.runbook),
        "conditions": [
            {
                "label": result.label,
                "condition": result.condition,
                "value": result.value,
                "holds": result.holds,
            }
            for result in verdict.conditions
        ],
    }


def _verify(step: Step, alert: AlertInput) -> dict[str, Any]:
    verify = step.effective_verify
    out: dict[str, Any] = {
        "kind": verify.kind,
        "within": human(verify.within),
        "every": human(verify.every),
    }
    if verify.kind == "promql":
        try:
            out["promql"] = render_verify_promql(step, alert.labels, alert.annotations)
        except RenderErrors as err:
            out["error"] = f"cannot render: {err} (the verification would count as failed)"
    elif verify.http is not None:
        out["http"] = verify.http.model_dump(mode="json")
    elif verify.probe is not None:
        out["probe"] = verify.probe.model_dump(mode="json")
    return out


def _plan(runbook: Runbook, alert: AlertInput) -> list[dict[str, Any]]:
    plan = []
    for index, step in enumerate(runbook.steps):
        plan.append(
            {
                "step": step.label(index),
                "action": step.action,
                "with": step.params.model_dump(mode="json", exclude_none=True),
                "timeout": human(step.timeout),
                "retries": step.retries,
                "approval": step.approval,
                "on_failure": step.on_failure,
                "automatic": runbook.auto_recovery and step.approval == "none",
                "verify": _verify(step, alert),
            }
        )
    return plan


def _escalation(
    runbook: Runbook, opened: datetime, *, at_once: str | None = None
) -> dict[str, Any]:
    if at_once is None and not runbook.auto_recovery:
        at_once = "auto_recovery is false"
    offsets = runbook.escalation.deadlines()
    if at_once is not None:
        offsets = [offset - runbook.escalation.after for offset in offsets]
    levels = []
    for level, offset in zip(runbook.escalation.chain, offsets, strict=True):
        notifier = (
            {"notify": "slack", "channel": level.channel}
            if isinstance(level, SlackLevel)
            else {
                "notify": "pagerduty",
                "routing_key_ref": level.routing_key_ref,
                "severity": level.severity,
            }
        )
        assert isinstance(level, SlackLevel | PagerDutyLevel)
        levels.append({"after": human(offset), "at": (opened + offset).isoformat(), **notifier})
    repeat = runbook.escalation.repeat
    return {
        "from": opened.isoformat(),
        "levels": levels,
        "repeat": None if repeat is None else {"every": human(repeat.every), "times": repeat.times},
        "note": f"escalates at once: {at_once}"
        if at_once is not None
        else "at 'after', or when the last step fails, whichever comes first",
    }


def explain_alert(
    alert: AlertInput, runbooks: RunbookSet, *, now: datetime | None = None
) -> dict[str, Any]:
    """Everything the responder would decide for ``alert``, as JSON-ready data."""
    explanation = runbooks.matcher.explain(alert.labels)
    resolution = resolve(alert.labels, alert.annotations, runbooks)
    opened = alert.starts_at or now or datetime.now(UTC)
    out: dict[str, Any] = {
        "alert": {"status": alert.status, "labels": alert.labels},
        "runbook": None,
        "also_matched": [_verdict(v, runbooks.sources) for v in explanation.also_matched()],
        "near_misses": [_verdict(v, runbooks.sources) for v in explanation.near_misses()],
    }
    if explanation.winner is None:
        out["result"] = "no runbook matches: the alert opens no incident"
        return out
    runbook = explanation.winner.runbook
    out["runbook"] = _verdict(explanation.winner, runbooks.sources)
    if isinstance(resolution, InvalidTarget):
        out["result"] = (
            f"invalid target: {resolution.field}: {resolution.reason}; the incident is "
            "audited and escalated, no action runs"
        )
        out["incident_key"] = resolution.incident_key
        out["escalation"] = _escalation(runbook, opened, at_once="invalid target")
        return out
    assert isinstance(resolution, Matched)
    out["result"] = (
        "matched"
        if alert.status != "resolved"
        else "matched, resolved alert: it resolves the open incident with this key, no step runs"
    )
    out["target"] = {
        "namespace": resolution.target.namespace,
        "kind": resolution.target.kind,
        "name": resolution.target.name,
        "region": resolution.target.region,
    }
    out["incident_key"] = resolution.incident_key
    out["guard_rails"] = {
        "cooldown": human(runbook.cooldown),
        "max_actions": f"{runbook.max_actions.count} per {human(runbook.max_actions.per)}",
        "dry_run": runbook.dry_run,
        "auto_recovery": runbook.auto_recovery,
    }
    out["steps"] = _plan(runbook, alert)
    out["escalation"] = _escalation(runbook, opened)
    return out


def _conditions(verdict: Mapping[str, Any]) -> str:
    parts = []
    for condition in verdict["conditions"]:
        mark = "ok" if condition["holds"] else "NO"
        parts.append(
            f"{condition['label']} {condition['condition']} [{mark}: {condition['value']!r}]"
        )
    return "; ".join(parts) or "(matches every alert)"


def render_text(report: Mapping[str, Any]) -> str:
    """The report for a terminal or a CI log."""
    labels = report["alert"]["labels"]
    shown = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    lines = [f"alert ({report['alert']['status']}): {{{shown}}}"]
    runbook = report["runbook"]
    if runbook is None:
        lines.append(f"result: {report['result']}")
    else:
        lines.append(
            f"runbook: {runbook['id']} ({runbook['file']}), priority {runbook['priority']}, "
            f"specificity {runbook['specificity']}"
        )
        lines.append(f"  why: {_conditions(runbook)}")
        lines.append(f"result: {report['result']}")
    for other in report["also_matched"]:
        lines.append(f"also matched, lower precedence: {other['id']}: {_conditions(other)}")
    for miss in report["near_misses"]:
        lines.append(f"near miss: {miss['id']}: {_conditions(miss)}")
    if "target" in report:
        target = report["target"]
        region = f", region {target['region']}" if target["region"] else ""
        lines.append(f"target: {target['kind']} {target['namespace']}/{target['name']}{region}")
    if "incident_key" in report:
        lines.append(f"incident key: {report['incident_key']}")
    if "guard_rails" in report:
        rails = report["guard_rails"]
        lines.append(
            f"guard rails: cooldown {rails['cooldown']}, max actions {rails['max_actions']}, "
            f"dry_run {str(rails['dry_run']).lower()}, auto_recovery "
            f"{str(rails['auto_recovery']).lower()}"
        )
    for number, step in enumerate(report.get("steps", []), start=1):
        mode = "automatic" if step["automatic"] else f"approval {step['approval']}"
        if not step["automatic"] and step["approval"] == "none":
            mode = "not run (auto_recovery false)"
        lines.append(
            f"step {number} {step['step']}: {step['action']} "
            f"{json.dumps(step['with'], sort_keys=True)}; timeout {step['timeout']}, "
            f"retries {step['retries']}, {mode}, on failure {step['on_failure']}"
        )
        verify = step["verify"]
        if "error" in verify:
            detail = verify["error"]
        elif verify["kind"] == "promql":
            detail = f"promql {verify['promql']}"
        elif verify["kind"] == "http":
            detail = f"http {json.dumps(verify['http'], sort_keys=True)}"
        else:
            detail = "the alert resolves"
        lines.append(f"  verify: {detail}, within {verify['within']} (every {verify['every']})")
    if "escalation" in report:
        escalation = report["escalation"]
        lines.append(f"escalation (from {escalation['from']}; {escalation['note']}):")
        for level in escalation["levels"]:
            who = (
                level["channel"]
                if level["notify"] == "slack"
                else f"{level['routing_key_ref']} ({level['severity']})"
            )
            lines.append(f"  +{level['after']} at {level['at']}: {level['notify']} {who}")
        if escalation["repeat"] is not None:
            times = escalation["repeat"]["times"]
            lines.append(
                f"  then the last level every {escalation['repeat']['every']}"
                + (f", {times} times" if times else ", until acknowledged")
            )
    return "\n".join(lines)
