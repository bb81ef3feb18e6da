"""Names of the topics and tables remediation adds (plain data: the core names them, streams declares them).

- ``remediation``: every input of the state machine, keyed by *target* key
  (``namespace/name``), so all incidents of one workload meet on one partition and the
  guard rails (cooldown, action window, one incident per target) decide atomically.
- ``remediation-timers``: the timer's ``DeadlineDue`` and ``Resume`` events, keyed by
  target key like ``remediation`` and consumed by the same agent. A lane of their own: a
  backlog of incident events on ``remediation`` delays an escalation by the agent's stream
  buffer at most (``worker.stream_buffer_maxsize``), not by the whole backlog.
- ``commands``: people's commands (Slack, PagerDuty, CLI), keyed by incident id.
- ``remediation-routes``: incident id -> target key, keyed by incident id, written when an
  incident is admitted; co-partitioned with ``commands`` so the command router finds the
  target of an incident in a local table.
- ``notifications``: one ``Notification`` per transition, keyed by incident id, for the
  notify agent (Slack, PagerDuty).
"""

from __future__ import annotations

from typing import Final

REMEDIATION: Final = "remediation"
TIMERS: Final = "remediation-timers"
COMMANDS: Final = "commands"
ROUTES: Final = "remediation-routes"
NOTIFICATIONS: Final = "notifications"
REPLIES: Final = "command-replies"
"""``ReplyToCommand`` effects, keyed by incident id, for the notify worker's replier."""

REMEDIATION_TABLE: Final = "remediation"
"""Target key -> ``TargetState`` JSON (changelog ``<app id>-remediation-changelog``)."""
ROUTES_TABLE: Final = "incident-routes"
"""Incident id -> target key."""
