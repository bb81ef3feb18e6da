"""The webhook payload boundary and the incident key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from responder.models.alerts import (
    AlertmanagerWebhook,
    AlertStatus,
    incident_key,
    normalize,
)

RECEIVED = datetime(2026, 11, 30, 3, 1, tzinfo=UTC)


def test_docs_payload_parses_with_newer_fields(docs_payload: dict[str, Any]) -> None:
    webhook = AlertmanagerWebhook.model_validate(docs_payload)

    assert webhook.group_key.startswith("{}/")
    assert [a.fingerprint for a in webhook.alerts] == ["b3a2c1d0e9f8a7b6", "c4b3a2d1e0f9a8b7"]


def test_normalize_gives_one_event_per_alert_on_one_key(docs_payload: dict[str, Any]) -> None:
    events = normalize(AlertmanagerWebhook.model_validate(docs_payload), received_at=RECEIVED)

    assert len(events) == 2
    assert {e.incident_key for e in events} == {"HighGenerationLatency/musearoo/drummaroo-engine"}
    first = events[0]
    assert first.status is AlertStatus.FIRING
    assert first.ends_at is None  # Go's zero time while firing
    assert first.starts_at == datetime(2026, 11, 30, 3, 0, 0, 123456, tzinfo=UTC)
    assert first.group_key == docs_payload["groupKey"]
    assert first.received_at == RECEIVED


def test_resolved_alert_keeps_its_end(docs_payload: dict[str, Any]) -> None:
    docs_payload["alerts"][0] |= {"status": "resolved", "endsAt": "2026-11-30T03:10:00+01:00"}

    [event, _] = normalize(AlertmanagerWebhook.model_validate(docs_payload), received_at=RECEIVED)

    assert event.ends_at == datetime(2026, 11, 30, 2, 10, tzinfo=UTC)


def test_missing_fingerprint_is_derived_from_labels(docs_payload: dict[str, Any]) -> None:
    for a in docs_payload["alerts"]:
        del a["fingerprint"]

    first, second = normalize(
        AlertmanagerWebhook.model_validate(docs_payload), received_at=RECEIVED
    )
    again, _ = normalize(AlertmanagerWebhook.model_validate(docs_payload), received_at=RECEIVED)

    assert first.fingerprint
    assert first.fingerprint != second.fingerprint
    assert first.fingerprint == again.fingerprint


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("alerts"), "alerts"),
        (lambda p: p.update(version="3"), "version"),
        (lambda p: p["alerts"][1].update(status="pending"), "alerts.1.status"),
        (lambda p: p["alerts"][0].pop("startsAt"), "alerts.0.startsAt"),
        (lambda p: p["alerts"][0].update(labels={"a": 1}), "alerts.0.labels.a"),
    ],
)
def test_wrong_shape_names_the_field(docs_payload: dict[str, Any], mutate: Any, field: str) -> None:
    mutate(docs_payload)

    with pytest.raises(ValidationError) as caught:
        AlertmanagerWebhook.model_validate(docs_payload)

    locs = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert field in locs


def test_incident_key_uses_service_else_deployment() -> None:
    base = {"alertname": "PodCrash", "namespace": "prod", "pod": "x-1", "severity": "critical"}

    assert incident_key(base | {"service": "api"}) == "PodCrash/prod/api"
    assert incident_key(base | {"deployment": "api-v2"}) == "PodCrash/prod/api-v2"
    assert incident_key(base | {"service": "api", "deployment": "other"}) == "PodCrash/prod/api"
    assert incident_key(base) == incident_key(base | {"pod": "x-2"})  # pod is not part of it


def test_incident_key_cannot_be_forged_by_separators() -> None:
    one = incident_key({"alertname": "A/b", "namespace": "c"})
    other = incident_key({"alertname": "A", "namespace": "b/c"})

    assert one != other
