"""Alertmanager's webhook payload (version 4) and the normalized alert event it becomes.

The payload models are the boundary: they accept what Alertmanager sends today and
tomorrow (unknown fields such as ``truncatedAlerts``' newer siblings ``routeLabels`` or
``notification_reason`` are ignored), and reject what it never sends (a wrong status, a
missing ``startsAt``) with an error that names the field. Everything past ingest works on
:class:`AlertEvent`, one per alert, keyed by :func:`incident_key`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Go's zero ``time.Time``: Alertmanager's ``endsAt`` while an alert is still firing."""


class AlertStatus(StrEnum):
    """An alert either fires or has been resolved; Alertmanager knows no third state."""

    FIRING = "firing"
    RESOLVED = "resolved"


class _Payload(BaseModel):
    """Alertmanager's JSON: camelCase on the wire, unknown fields ignored, never mutated."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class AlertmanagerAlert(_Payload):
    """One entry of ``alerts[]`` (Alertmanager ``template.Alert``)."""

    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(ZERO_TIME, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field(
        "",
        description="Alertmanager's label hash; absent only before 0.19, then derived from labels.",
    )


class AlertmanagerWebhook(_Payload):
    """The body Alertmanager's webhook notifier posts (``notify/webhook/webhook.go``)."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: AlertStatus
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[AlertmanagerAlert]


class AlertEvent(BaseModel):
    """One alert as the rest of the pipeline sees it: the value of a ``responder.alerts`` message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_key: str
    fingerprint: str
    status: AlertStatus
    starts_at: datetime
    ends_at: datetime | None = Field(None, description="None while the alert fires.")
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    group_key: str = ""
    receiver: str = ""
    generator_url: str = ""
    received_at: datetime = Field(description="When ingest received the webhook (UTC).")

    @property
    def dedup_id(self) -> tuple[str, datetime, AlertStatus]:
        """What makes two deliveries the same alert (Alertmanager HA sends each one twice)."""
        return (self.fingerprint, self.starts_at, self.status)


def incident_key(labels: Mapping[str, str]) -> str:
    """The incident of an alert no runbook matches (a matched one is keyed by runbook +
    target: ``responder.runbooks.resolve.incident_key_for``).

    ``alertname``, ``namespace`` and the ``service`` (else ``deployment``) label, each
    percent-encoded and joined by ``/`` so that no two label sets share a key. Pure: ingest
    uses it as the Kafka key (one partition per incident) and triage as the table key.
    """
    target = labels.get("service") or labels.get("deployment") or ""
    parts = (labels.get("alertname", ""), labels.get("namespace", ""), target)
    return "/".join(quote(part, safe="") for part in parts)


_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_SEPARATOR = 0xFF
"""Prometheus' ``model.SeparatorByte``: never valid UTF-8, so it cannot occur in a name or value."""


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, as its webhook sends it (``%016x``).

    Prometheus' ``model.LabelSet.Fingerprint`` (prometheus/common ``model/signature.go``,
    ``labelSetToFingerprint``): FNV-1a 64 over each label name and value in name order,
    each followed by the 0xff separator byte; the empty set is FNV's offset basis. Used for
    alerts the worker evaluates itself (``responder.alerting``), so that the same label set
    by either path is the same alert to triage, and for payloads that carry no fingerprint.
    FNV-1a is written out here: the standard library has no FNV, and the six lines are the
    whole algorithm.
    """
    value = _FNV64_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                value = ((value ^ byte) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
            value = ((value ^ _SEPARATOR) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


IncidentKeyer = Callable[[Mapping[str, str], Mapping[str, str]], str]
"""Labels and annotations of an alert -> its incident key (ingest's is runbook-aware)."""


def label_incident_key(labels: Mapping[str, str], _annotations: Mapping[str, str]) -> str:
    """:func:`incident_key` as an :data:`IncidentKeyer`."""
    return incident_key(labels)


def normalize(
    webhook: AlertmanagerWebhook,
    *,
    received_at: datetime,
    key: IncidentKeyer = label_incident_key,
) -> list[AlertEvent]:
    """One :class:`AlertEvent` per alert of the webhook, in payload order."""
    return [
        AlertEvent(
            incident_key=key(alert.labels, alert.annotations),
            fingerprint=alert.fingerprint or label_fingerprint(alert.labels),
            status=alert.status,
            starts_at=alert.starts_at.astimezone(UTC),
            ends_at=(
                None
                if alert.status is AlertStatus.FIRING or alert.ends_at <= ZERO_TIME
                else alert.ends_at.astimezone(UTC)
            ),
            labels=alert.labels,
            annotations=alert.annotations,
            group_key=webhook.group_key,
            receiver=webhook.receiver,
            generator_url=alert.generator_url,
            received_at=received_at,
        )
        for alert in webhook.alerts
    ]
