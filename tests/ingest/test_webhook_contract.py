"""The webhook contract that does not depend on the broker: auth, content type, size, schema.

Each refusal is a 4xx that names what is wrong, because Alertmanager never retries a 4xx:
the answer is all the operator will see. The broker-facing half (200 only after acks, 503
when Kafka is away) runs against the real Kafka in test_webhook_kafka.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.models.alerts import AlertEvent

URL = "/v1/alertmanager"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_docs_payload_is_accepted_and_published_per_alert(
    client: Any, auth: dict[str, str], recording: Any, docs_payload: dict[str, Any]
) -> None:
    response = await client.post(URL, json=docs_payload, headers=auth)

    assert response.status == 200
    assert await response.json() == {"accepted": 2}
    keys = [key for key, _ in recording.messages]
    assert keys == [b"HighGenerationLatency/musearoo/drummaroo-engine"] * 2
    events = [AlertEvent.model_validate_json(value) for _, value in recording.messages]
    assert [e.fingerprint for e in events] == ["b3a2c1d0e9f8a7b6", "c4b3a2d1e0f9a8b7"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer"},
        {"Authorization": "Token t0ken-for-tests"},
        basic("alertmanager", "wrong"),
        basic("someone", "pa55word"),
        {"Authorization": "Basic not-base64!"},
    ],
    ids=[
        "none",
        "wrong-token",
        "empty-token",
        "other-scheme",
        "wrong-password",
        "wrong-user",
        "garbled",
    ],
)
async def test_missing_or_wrong_credentials_get_401(
    client: Any, recording: Any, docs_payload: dict[str, Any], headers: dict[str, str]
) -> None:
    response = await client.post(URL, json=docs_payload, headers=headers)

    assert response.status == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert recording.messages == []


async def test_basic_auth_is_accepted(client: Any, docs_payload: dict[str, Any]) -> None:
    response = await client.post(URL, json=docs_payload, headers=basic("alertmanager", "pa55word"))

    assert response.status == 200


async def test_wrong_content_type_gets_415(
    client: Any, auth: dict[str, str], docs_payload: dict[str, Any]
) -> None:
    response = await client.post(
        URL, data=json.dumps(docs_payload), headers=auth | {"Content-Type": "text/plain"}
    )

    assert response.status == 415
    assert "application/json" in (await response.json())["error"]


async def test_body_over_the_limit_gets_413_from_its_length(
    client: Any, auth: dict[str, str], recording: Any, docs_payload: dict[str, Any]
) -> None:
    docs_payload["commonAnnotations"]["description"] = "x" * (64 * 1024)

    response = await client.post(URL, json=docs_payload, headers=auth)

    assert response.status == 413
    assert "65536 bytes" in (await response.json())["error"]
    assert recording.messages == []


async def test_chunked_body_without_length_over_the_limit_gets_413(
    client: Any, auth: dict[str, str], recording: Any
) -> None:
    async def endless() -> Any:
        for _ in range(10 * 16):  # ten times the limit, with no Content-Length to check first
            yield b" " * 4096

    response = await client.post(
        URL, data=endless(), headers=auth | {"Content-Type": "application/json"}
    )

    assert response.status == 413
    assert recording.messages == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"version": "4"}', "groupKey"),
    ],
)
async def test_malformed_body_gets_400_naming_the_field(
    client: Any, auth: dict[str, str], body: bytes, field: str
) -> None:
    response = await client.post(
        URL, data=body, headers=auth | {"Content-Type": "application/json"}
    )

    assert response.status == 400
    answer = await response.json()
    assert field in {e["field"] for e in answer["errors"]}
    assert answer["error"].startswith(answer["field"])


async def test_wrong_alert_shape_names_the_alert_field(
    client: Any, auth: dict[str, str], recording: Any, docs_payload: dict[str, Any]
) -> None:
    docs_payload["alerts"][1]["startsAt"] = "yesterday"

    response = await client.post(URL, json=docs_payload, headers=auth)

    assert response.status == 400
    answer = await response.json()
    assert answer["field"] == "alerts.1.startsAt"
    assert recording.messages == []  # all or nothing: the valid first alert is not published


async def test_broker_unavailable_gets_503_with_retry_after(
    client: Any, auth: dict[str, str], recording: Any, docs_payload: dict[str, Any]
) -> None:
    recording.unavailable = True

    response = await client.post(URL, json=docs_payload, headers=auth)

    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_metrics_count_requests_alerts_and_publish_latency(
    client: Any, auth: dict[str, str], docs_payload: dict[str, Any]
) -> None:
    await client.post(URL, json=docs_payload, headers=auth)
    await client.post(URL, json=docs_payload, headers={})

    text = await (await client.get("/metrics")).text()

    assert 'responder_ingest_requests_total{route="/v1/alertmanager",status="200"} 1.0' in text
    assert 'responder_ingest_requests_total{route="/v1/alertmanager",status="401"} 1.0' in text
    assert "responder_ingest_alerts_accepted_total 2.0" in text
    assert "responder_ingest_publish_seconds_count 1.0" in text


async def test_one_log_event_per_request_with_group_key_and_count(
    client: Any, auth: dict[str, str], docs_payload: dict[str, Any]
) -> None:
    with capture_logs() as logs:
        await client.post(URL, json=docs_payload, headers=auth)

    [event] = [e for e in logs if e["event"].startswith("alertmanager.webhook")]
    assert event["group_key"] == docs_payload["groupKey"]
    assert event["alerts"] == 2
    assert "t0ken-for-tests" not in repr(logs)  # secrets never reach a log line
