"""Topic names, as plain data, so the domain core can name a topic without importing Kafka.

Every topic is keyed by the incident key (see :func:`responder.models.alerts.incident_key`),
so one partition owns one incident from ingest to triage to remediation. The Faust app
(``streams``) declares them with partitions; ingest only makes sure the one it writes exists.
"""

from __future__ import annotations

from typing import Final

ALERTS: Final = "alerts"
"""Normalized Alertmanager alerts, one message per alert, written by ingest."""

INCIDENTS: Final = "incidents"
"""Incident transitions (opened, resolved, ...), written by triage."""

AUDIT: Final = "audit"
"""Append-only record of every transition and action result."""

INCIDENTS_TABLE: Final = "incidents"
"""Name of the Faust table holding the current incident per key (its changelog is derived)."""


def topic_name(prefix: str, name: str) -> str:
    """The full topic name for ``name`` under a deployment's prefix: ``responder.alerts``."""
    return f"{prefix}.{name}"
