"""Incident history from ``responder.audit``: the whole story of every incident, however old.

The remediation table keeps only the last few ended incidents per target; the audit topic
keeps every transition, action, verification, escalation and command. So
``responder incidents show|export|list`` read the audit topic from its start and fold each
incident's events into an ``IncidentHistory``: its timeline, the actions and their
results, what each verification saw, who acknowledged or approved what, and the context
the page carried.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from responder.models.incidents import AuditEvent
from responder.models.topics import AUDIT, topic_name
from responder.settings import Settings

PEOPLE_COMMANDS = {"ack", "approve", "reject", "resolve", "escalate"}


async def read_audit(settings: Settings, *, timeout_s: float = 30.0) -> list[AuditEvent]:
    """Every record on the audit topic up to its end offsets now, oldest first."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    events: list[AuditEvent] = []
    try:
        topic = topic_name(settings.kafka.topic_prefix, AUDIT)
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return events
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for message in messages:
                    try:
                        events.append(AuditEvent.model_validate_json(message.value))
                    except ValueError:
                        continue  # not an audit record of ours: nothing to show
    finally:
        await consumer.stop()
    return sorted(events, key=lambda e: e.at)


@dataclass
class IncidentHistory:
    """One incident as its audit events tell it."""

    id: str
    key: str = ""
    runbook: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    opened_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str = ""
    alert_resolved_at: datetime | None = None
    events: list[AuditEvent] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "resolved" if self.ended_at is not None else "open"

    @property
    def target(self) -> str:
        return self.key.partition(":")[2] if ":" in self.key else self.key

    def add(self, event: AuditEvent) -> None:
        self.events.append(event)
        data, kind = event.data, event.kind
        self.key = self.key or event.incident_key
        if kind == "incident.open":
            self.opened_at = self.opened_at or event.at
            self.labels = self.labels or dict(data.get("labels", {}))
            self.annotations = self.annotations or dict(data.get("annotations", {}))
        elif kind == "incident.resolved":
            self.alert_resolved_at = event.at
        elif kind == "remediation.opened":
            self.runbook = str(data.get("runbook", ""))
            self.opened_at = self.opened_at or event.at
            self.labels = self.labels or dict(data.get("labels", {}))
        elif kind == "remediation.action_started":
            self.actions.append(
                {
                    "step": data.get("step"),
                    "attempt": data.get("attempt"),
                    "action": data.get("action"),
                    "started_at": event.at.isoformat(),
                }
            )
        elif kind == "remediation.action_finished":
            for action in reversed(self.actions):
                if (action["step"], action["attempt"]) == (data.get("step"), data.get("attempt")):
                    action.update(
                        finished_at=event.at.isoformat(),
                        ok=data.get("ok"),
                        detail=data.get("detail", ""),
                        result=data.get("result"),
                    )
                    break
        elif kind in ("remediation.verified", "remediation.verify_failed"):
            self.verifications.append(
                {
                    "step": data.get("step"),
                    "ok": kind == "remediation.verified",
                    "detail": data.get("detail", ""),
                    "at": event.at.isoformat(),
                }
            )
        elif kind == "remediation.command" and data.get("command") in PEOPLE_COMMANDS:
            self.people.append(
                {
                    "command": data.get("command"),
                    "actor": data.get("actor"),
                    "at": event.at.isoformat(),
                }
            )
        elif kind == "remediation.escalated":
            self.escalations.append(
                {
                    "level": data.get("level"),
                    "notify": data.get("notify"),
                    "reason": data.get("reason", ""),
                    "at": event.at.isoformat(),
                }
            )
        elif kind == "remediation.resolved":
            self.ended_at, self.outcome = event.at, str(data.get("how", ""))


def histories(events: list[AuditEvent]) -> dict[str, IncidentHistory]:
    """Incident id -> its history, for every incident the events mention."""
    found: dict[str, IncidentHistory] = {}
    for event in events:
        if not event.incident_id or not event.kind.startswith(("incident.", "remediation.")):
            continue
        found.setdefault(event.incident_id, IncidentHistory(event.incident_id)).add(event)
    return found


def describe(event: AuditEvent) -> str:
    """One timeline line for a person."""
    data, kind = event.data, event.kind
    step = data.get("step")
    n = f"step {step + 1}" if isinstance(step, int) else "step"
    match kind:
        case "incident.open":
            return f"alert {data.get('labels', {}).get('alertname', '')} opened the incident"
        case "incident.resolved":
            return "the incident's alerts all resolved"
        case "remediation.opened":
            return f"runbook {data.get('runbook')} took it"
        case "remediation.action_started":
            return f"{n} {data.get('action')} started (attempt {data.get('attempt')})"
        case "remediation.action_finished":
            return f"{n} finished: {'ok' if data.get('ok') else 'failed'}: {data.get('detail', '')}"
        case "remediation.verified":
            return f"{n} verified: {data.get('detail', '')}"
        case "remediation.verify_failed":
            return f"{n} verification failed: {data.get('detail', '')}"
        case "remediation.escalated":
            return f"escalated to level {data.get('level')} ({data.get('notify')})"
        case "remediation.command":
            return f"{data.get('command')} by {data.get('actor')}"
        case "remediation.halted":
            return f"automation halted: {data.get('reason')}"
        case "remediation.resolved":
            return f"resolved ({str(data.get('how', '')).replace('_', ' ')})"
    rest = {k: v for k, v in data.items() if k not in ("runbook", "labels", "annotations")}
    return f"{kind} {json.dumps(rest, default=str)[:200]}"


def render_show(h: IncidentHistory) -> str:
    opened = h.opened_at.isoformat(timespec="seconds") if h.opened_at else "?"
    lines = [
        f"incident {h.id}",
        f"  runbook {h.runbook or '-'}  target {h.target or '-'}  state {h.state}"
        + (f" ({h.outcome})" if h.outcome else ""),
        f"  opened {opened}",
        "timeline",
    ]
    start = h.events[0].at if h.events else None
    for event in h.events:
        offset = (event.at - start).total_seconds() if start else 0.0
        lines.append(
            f"  {event.at.isoformat(timespec='seconds')}  +{offset:7.1f}s  {describe(event)}"
        )
    return "\n".join(lines)


def export_json(h: IncidentHistory) -> str:
    return json.dumps(
        {
            "incident": h.id,
            "key": h.key,
            "runbook": h.runbook,
            "target": h.target,
            "state": h.state,
            "outcome": h.outcome,
            "opened_at": h.opened_at,
            "ended_at": h.ended_at,
            "alert_resolved_at": h.alert_resolved_at,
            "context": {"labels": h.labels, "annotations": h.annotations},
            "actions": h.actions,
            "verifications": h.verifications,
            "people": h.people,
            "escalations": h.escalations,
            "timeline": [
                {"at": e.at, "kind": e.kind, "text": describe(e), "data": e.data} for e in h.events
            ],
        },
        indent=2,
        default=str,
    )


def export_markdown(h: IncidentHistory) -> str:
    def rows(items: list[dict[str, Any]], cols: list[str]) -> list[str]:
        if not items:
            return ["(none)"]
        out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for item in items:
            cells = [str(item.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in cols]
            out.append("| " + " | ".join(cells) + " |")
        return out

    title = h.annotations.get("summary") or h.labels.get("alertname", h.id)
    lines = [
        f"# Post-mortem: {title}",
        "",
        f"- Incident: `{h.id}`",
        f"- Runbook: `{h.runbook or '-'}`; target `{h.target or '-'}`",
        f"- Opened: {h.opened_at.isoformat() if h.opened_at else '?'}",
        f"- Ended: {h.ended_at.isoformat() if h.ended_at else 'still open'}"
        + (f" ({h.outcome.replace('_', ' ')})" if h.outcome else ""),
        "",
        "## Summary",
        "",
        "_What happened, its impact, and why (to be written)._",
        "",
        "## Timeline",
        "",
        *[f"- {e.at.isoformat(timespec='seconds')} {describe(e)}" for e in h.events],
        "",
        "## Actions and results",
        "",
        *rows(
            [a | {"step": (a.get("step") or 0) + 1} for a in h.actions],
            ["step", "action", "attempt", "ok", "detail"],
        ),
        "",
        "## Verifications",
        "",
        *rows(
            [v | {"step": (v.get("step") or 0) + 1} for v in h.verifications],
            ["step", "ok", "detail", "at"],
        ),
        "",
        "## People",
        "",
        *rows(h.people, ["command", "actor", "at"]),
        "",
        "## Escalations",
        "",
        *rows(h.escalations, ["level", "notify", "reason", "at"]),
        "",
        "## Context at paging time",
        "",
        *[f"- `{k}`: {v}" for k, v in sorted(h.labels.items())],
        *[f"- {k}: {v}" for k, v in sorted(h.annotations.items())],
        "",
        "## Follow-ups",
        "",
        "- _(to be written)_",
        "",
    ]
    return "\n".join(lines)
