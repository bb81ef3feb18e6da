"""The fingerprint of an alert the worker evaluates is the one Alertmanager computes."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid

from responder.models.alerts import label_fingerprint
from responder_dev.stack import process
from responder_dev.stack.alertmanager import Alertmanager

# Label sets with the fingerprints Debian's Alertmanager 0.25 reported for them
# (GET /api/v2/alerts); test_recorded_fingerprints_are_alertmanagers asks it again.
KNOWN = [
    ({"alertname": "HighGenerationLatency"}, "59a793fc9dadd97e"),
]


def _fingerprints_from(alertmanager: Alertmanager, run: str) -> dict[str, str]:
    query = urllib.parse.urlencode({"filter": f'run="{run}"'})
    status, body = process.http_request(alertmanager.port, f"/api/v2/alerts?{query}")
    assert status == 200, body
    return {alert["labels"]["case"]: alert["fingerprint"] for alert in json.loads(body)}


def test_fingerprints_equal_the_real_alertmanagers(alertmanager: Alertmanager) -> None:
    run = uuid.uuid4().hex[:8]
    cases = {
        "plain": {"alertname": "high_generation_latency", "severity": "warning"},
        "many": {
            "alertname": "session_error_rate",
            "namespace": "musearoo",
            "service": "session-api",
            "pod": "session-api-7d9f-x2",
            "severity": "critical",
            "team": "musearoo",
        },
        "unicode": {"alertname": "Ünïcode", "zone": "東京", "quote": 'a"b\\c', "empty_after": "x"},
        "order": {"b": "1", "a": "2", "ab": "3", "A": "4", "alertname": "Order"},
    }
    labelled = {case: {**labels, "run": run, "case": case} for case, labels in cases.items()}
    alertmanager.post_alerts([{"labels": labels} for labels in labelled.values()])
    deadline = time.monotonic() + 30
    while len(seen := _fingerprints_from(alertmanager, run)) < len(cases):
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)  # polling the server's own state, with a deadline
    assert {case: label_fingerprint(labels) for case, labels in labelled.items()} == seen


def test_known_fingerprints() -> None:
    for labels, fingerprint in KNOWN:
        assert label_fingerprint(labels) == fingerprint
    assert label_fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64's offset basis


def test_recorded_fingerprints_are_alertmanagers(alertmanager: Alertmanager) -> None:
    alertmanager.post_alerts([{"labels": labels} for labels, _ in KNOWN])
    for labels, fingerprint in KNOWN:
        query = urllib.parse.urlencode(
            {"filter": [f'{k}="{v}"' for k, v in labels.items()]}, doseq=True
        )
        deadline = time.monotonic() + 30
        while True:
            status, body = process.http_request(alertmanager.port, f"/api/v2/alerts?{query}")
            found = [a["fingerprint"] for a in json.loads(body) if a["labels"] == labels]
            if status == 200 and found:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.1)  # polling the server's own state, with a deadline
        assert found == [fingerprint]
