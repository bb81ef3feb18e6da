"""Fixtures for the pure domain models: sample payloads and event builders, no servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from responder.models.alerts import AlertEvent, AlertStatus, incident_key

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@pytest.fixture
def docs_payload() -> dict[str, Any]:
    """A v4 payload shaped as Alertmanager's docs describe it, plus newer fields."""
    loaded: dict[str, Any] = json.loads(
        (Path(__file__).parent / "alertmanager_v4.json").read_text()
    )
    return loaded


@pytest.fixture
def alert() -> Callable[..., AlertEvent]:
    """Build an AlertEvent: ``alert("fp1", minutes=0, status="firing", service="api")``."""

    def build(
        fingerprint: str = "fp1",
        *,
        minutes: int = 0,
        status: str = "firing",
        alertname: str = "HighGenerationLatency",
        service: str = "drummaroo-engine",
    ) -> AlertEvent:
        labels = {"alertname": alertname, "namespace": "musearoo", "service": service}
        return AlertEvent(
            incident_key=incident_key(labels),
            fingerprint=fingerprint,
            status=AlertStatus(status),
            starts_at=T0 + timedelta(minutes=minutes),
            labels=labels,
            received_at=T0,
        )

    return build
