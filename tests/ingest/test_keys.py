"""Ingest keys each alert by runbook + target, so one partition owns one incident."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from responder.ingest.app import create_app
from responder.ingest.keys import load_store, runbook_keyer
from responder.models.alerts import incident_key
from responder.settings import IngestSettings

SEED = Path(__file__).parents[2] / "runbooks"
Post = Callable[..., Awaitable[list[str]]]


def _alert(**labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {},
        "startsAt": "2026-11-30T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{abs(hash(tuple(sorted(labels.items())))):016x}"[:16],
    }


def _latency(engine: str) -> dict[str, Any]:
    return _alert(
        alertname="HighGenerationLatency", severity="warning", namespace="musearoo", engine=engine
    )


def _payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighGenerationLatency"}',
        "status": "firing",
        "receiver": "responder",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": list(alerts),
    }


@pytest.fixture
def post(
    ingest_settings: IngestSettings, recording: Any, auth: dict[str, str]
) -> Callable[..., Awaitable[list[str]]]:
    """POST alerts to an ingest keyed by the runbooks of a directory; the Kafka keys sent."""

    async def keys(store_dir: Path, *alerts: dict[str, Any]) -> list[str]:
        keyer = runbook_keyer(load_store(str(store_dir)))
        app = create_app(ingest_settings, recording, keyer=keyer)
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/v1/alertmanager", json=_payload(*alerts), headers=auth)
            assert response.status == 200, await response.text()
        return _kafka_keys(recording.messages)

    return keys


def _kafka_keys(messages: Sequence[tuple[bytes, bytes]]) -> list[str]:
    keys = [key.decode() for key, _ in messages]
    # the Kafka key is the incident key the event carries (triage keys its table by it)
    assert keys == [json.loads(value)["incident_key"] for _, value in messages]
    return keys


async def test_two_engines_of_one_alertname_are_two_incidents(post: Post) -> None:
    keys = await post(SEED, _latency("melody"), _latency("drums"))
    assert keys == [
        "high_generation_latency:musearoo/melody-engine",
        "high_generation_latency:musearoo/drums-engine",
    ]


async def test_an_alert_no_runbook_matches_keeps_its_label_key(post: Post) -> None:
    alert = _alert(alertname="DiskAlmostFull", namespace="musearoo", service="api")
    assert await post(SEED, alert) == [incident_key(alert["labels"])]


async def test_an_invalid_target_value_gets_a_stable_key_not_a_name(post: Post) -> None:
    crafted = _latency("x; rm -rf /")
    keys = await post(SEED, crafted, crafted)
    assert keys[0] == keys[1]
    assert keys[0].startswith("high_generation_latency:invalid-target/")
    assert "rm -rf" not in keys[0]


async def test_invalid_runbooks_fall_back_to_label_keys(post: Post, tmp_path: Path) -> None:
    shutil.copytree(SEED, tmp_path / "runbooks")
    (tmp_path / "runbooks" / "broken.yaml").write_text("apiVersion: responder/v1\nid: [\n")
    alert = _latency("melody")
    assert await post(tmp_path / "runbooks", alert) == [incident_key(alert["labels"])]
