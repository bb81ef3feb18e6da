"""Names of the topics and tables remediation adds (plain data: the core names them, streams declares them).

- ``remediation``: every input of the state machine, keyed by *target* key
  (``namespace/name``), so all incidents of one workload meet on one partition and the
  guard rails (cooldown, action window, one incident per target) decide atomically.
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
COMMANDS: Final = "commands"
ROUTES: Final = "remediation-routes"
NOTIFICATIONS: Final = "notifications"
REPLIES: Final = "command-replies"
"""``ReplyToCommand`` effects, keyed by incident id, for the notify worker's replier."""

REMEDIATION_TABLE: Final = "remediation"
"""Target key -> ``TargetState`` JSON (changelog ``<app id>-remediation-changelog``)."""
ROUTES_TABLE: Final = "incident-routes"
"""Incident id -> target key."""
