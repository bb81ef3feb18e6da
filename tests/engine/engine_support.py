"""Builders for the pure engine tests: runbooks from YAML text, events at given times."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from responder.engine.machine import Decision, EngineConfig, decide
from responder.engine.records import (
    Effect,
    Event,
    IncidentOpened,
    TargetRef,
    TargetState,
)
from responder.runbooks.loader import load_text
from responder.runbooks.schema import Runbook

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
TARGET = TargetRef(namespace="musearoo", kind="Deployment", name="drummaroo-engine")
TKEY = TARGET.key

BASE = """
apiVersion: responder/v1
id: {id}
match: {{alertname: {alertname}}}
target: {{namespace: "{{{{ labels.namespace }}}}", name: "{{{{ labels.engine }}}}-engine"}}
auto_recovery: {auto}
dry_run: {dry}
cooldown: {cooldown}
max_actions: {{count: {max_count}, per: {per}}}
steps:
{steps}
escalation:
  after: {after}
  chain:
    - {{notify: slack, channel: "#incidents"}}
    - {{notify: pagerduty, routing_key_ref: oncall, wait: 120s}}
{repeat}
"""

THREE_STEPS = """
  - action: cache.clear
    with: {pattern: "generation:*"}
    timeout: 30s
    retries: 1
    verify:
      promql: 'up{namespace="{{ labels.namespace }}"} == 1'
      within: 60s
      every: 5s
  - action: model.reload
    with: {path: /admin/reload, port: 8080}
    timeout: 60s
  - action: region.failover
    approval: required
    with:
      httproute: {name: api, primary: primary, backup: backup, backup_weight: 100}
    timeout: 60s
    verify: {alert_resolved: true, within: 5m}
""".strip("\n")

APPROVAL_ONLY = """
  - action: deployment.restart
    approval: required
    timeout: 60s
    verify: {alert_resolved: true, within: 2m}
""".strip("\n")


def runbook(
    *,
    id: str = "latency",
    alertname: str = "HighLatency",
    steps: str = THREE_STEPS,
    auto: bool = True,
    dry: bool = False,
    cooldown: str = "10m",
    max_count: int = 6,
    per: str = "1h",
    after: str = "300s",
    repeat: str = "",
) -> Runbook:
    text = BASE.format(
        id=id,
        alertname=alertname,
        steps=steps,
        auto=str(auto).lower(),
        dry=str(dry).lower(),
        cooldown=cooldown,
        max_count=max_count,
        per=per,
        after=after,
        repeat=f"  repeat: {repeat}" if repeat else "",
    )
    loaded, _, errors = load_text(text, f"{id}.yaml")
    assert loaded is not None, [str(e) for e in errors]
    return loaded


def opened(
    incident_id: str = "inc-1", *, runbook_id: str = "latency", at: datetime = T0, **extra: Any
) -> IncidentOpened:
    fields: dict[str, Any] = {
        "incident_id": incident_id,
        "incident_key": f"{runbook_id}:{TKEY}",
        "runbook_id": runbook_id,
        "target": TARGET,
        "labels": {"alertname": "HighLatency", "namespace": "musearoo", "engine": "drummaroo"},
        "opened_at": at,
    }
    fields.update(extra)
    return IncidentOpened(**fields)


class Engine:
    """Feeds events to ``decide`` as the agent does: state in, state stored, effects kept."""

    def __init__(self, *runbooks: Runbook, dry_run: bool = False) -> None:
        self.runbooks = {rb.id: rb for rb in runbooks}
        self.state: TargetState | None = None
        self.config = EngineConfig(global_dry_run=dry_run)
        self.all_effects: list[Effect] = []

    def feed(self, event: Event, at: datetime | timedelta = T0) -> Decision:
        now = T0 + at if isinstance(at, timedelta) else at
        decision = decide(
            self.state,
            event,
            target_key=TKEY,
            runbooks=self.runbooks.get,
            now=now,
            config=self.config,
        )
        # What the table stores is JSON: round-trip it so every test checks serialisation too.
        self.state = TargetState.model_validate_json(decision.state.model_dump_json())
        self.all_effects += decision.effects
        return decision

    def run(self, incident_id: str = "inc-1") -> Any:
        assert self.state is not None
        return self.state.runs[incident_id]


def of_type(effects: Iterable[Effect], kind: type) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]
