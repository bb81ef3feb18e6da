"""The shipped runbooks and the alert rules they answer: valid, consistent, accepted by the real tools."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from responder.runbooks.catalog import RunbookSet
from responder.runbooks.loader import load_directory
from responder.runbooks.matcher import Equals, OneOf
from responder.runbooks.resolve import Matched, render_verify_promql, resolve
from responder_dev.stack.prometheus import Prometheus

EXPECTED_RUNBOOK = {
    "HighGenerationLatency": "high_generation_latency",
    "EngineHealthLow": "ai_model_failure",
    "HighWebSocketLatency": "websocket_connection_issues",
    "HighSessionErrorRate": "websocket_connection_issues",
    "DatabasePerformanceDegraded": "database_performance",
    # The alert definitions' (alerts/), the same runbooks by the worker's own path.
    "high_generation_latency": "high_generation_latency",
    "engine_health_degradation": "ai_model_failure",
    "websocket_latency_spike": "websocket_connection_issues",
    "session_error_rate": "websocket_connection_issues",
}
NO_RUNBOOK = {"LowUserSatisfaction", "low_user_satisfaction"}
"""Standard alerts that still notify: a person looks."""


@pytest.fixture(scope="module")
def seeds() -> RunbookSet:
    from runbook_support import SEED_DIR

    result = load_directory(SEED_DIR)
    assert result.errors == ()
    assert result.runbooks is not None
    return result.runbooks


def _rule_alerts(rules_dir: Path) -> list[dict[str, Any]]:
    document = YAML(typ="safe").load((rules_dir / "musearoo.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _promtool() -> str:
    binary = shutil.which("promtool")
    assert binary is not None, "promtool comes with Debian's prometheus package (deploy/local)"
    return binary


def test_seed_runbooks_load_clean(seeds: RunbookSet) -> None:
    assert sorted(seeds.by_id) == [
        "ai_model_failure",
        "database_performance",
        "high_generation_latency",
        "websocket_connection_issues",
    ]


def test_seed_runbooks_say_what_the_design_says(seeds: RunbookSet) -> None:
    def actions(runbook_id: str) -> list[str]:
        return [step.action for step in seeds.by_id[runbook_id].steps]

    latency = seeds.by_id["high_generation_latency"]
    assert actions("high_generation_latency") == [
        "cache.clear",
        "model.reload",
        "deployment.scale",
        "region.failover",
    ]
    scale = latency.steps[2].params.model_dump()
    assert (scale["factor"], scale["max"]) == (2.0, 20)
    # Reloaded models are verified by the design's health check: a test generation on the
    # pods model.reload just reached, at the design's thresholds, nothing degraded accepted.
    reload_verify = latency.steps[1].verify
    assert reload_verify is not None
    assert reload_verify.probe is not None
    probe = reload_verify.probe
    assert probe.base is None
    assert probe.port == latency.steps[1].params.model_dump()["port"]
    assert (probe.complexity, probe.style) == (0.5, "test")
    assert (probe.min_confidence, probe.max_latency_ms, probe.accept) == (0.7, 200.0, [])
    assert latency.escalation.after == timedelta(seconds=300)

    websocket = seeds.by_id["websocket_connection_issues"]
    assert actions("websocket_connection_issues") == [
        "connections.reset",
        "deployment.restart",
        "deployment.scale",
    ]
    assert websocket.escalation.after == timedelta(seconds=120)

    database = seeds.by_id["database_performance"]
    assert database.auto_recovery is False
    assert database.escalation.after == timedelta(0)
    assert [step.approval for step in database.steps] == ["required"]

    models = seeds.by_id["ai_model_failure"]
    assert actions("ai_model_failure") == ["model.reload", "model.reload", "deployment.restart"]
    assert models.steps[1].params.model_dump()["variant"] == "backup"
    assert models.escalation.after == timedelta(seconds=180)


def test_alert_rules_pass_promtool_check(rules_dir: Path) -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", str(rules_dir / "musearoo.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_alert_rules_fire_with_the_labels_runbooks_need(rules_dir: Path) -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", "musearoo_test.yml"],
        cwd=rules_dir / "tests",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_and_every_runbook_an_alert(
    seeds: RunbookSet, rules_dir: Path
) -> None:
    from runbook_support import REPO

    from responder.alerting.loader import load_definitions

    definitions = load_definitions(REPO / "alerts").definitions
    assert definitions is not None
    alerts = {rule["alert"] for rule in _rule_alerts(rules_dir)} | set(definitions.by_name)
    assert alerts == set(EXPECTED_RUNBOOK) | NO_RUNBOOK
    for name in alerts - NO_RUNBOOK:
        resolution = resolve(
            {
                "alertname": name,
                "severity": "warning",
                "namespace": "musearoo",
                "engine": "e",
                "service": "s",
            },
            {},
            seeds,
        )
        assert isinstance(resolution, Matched), name
        assert resolution.runbook.id == EXPECTED_RUNBOOK[name]
    for runbook in seeds.runbooks:
        condition = runbook.match["alertname"]
        names = {condition.value} if isinstance(condition, Equals) else set()
        if isinstance(condition, OneOf):
            names = set(condition.values)
        assert names, runbook.id
        assert names <= alerts, runbook.id


def test_promtool_fired_alerts_resolve_to_valid_targets(seeds: RunbookSet, rules_dir: Path) -> None:
    """The exact labels promtool saw firing go through the same function triage uses."""
    document = YAML(typ="safe").load((rules_dir / "tests" / "musearoo_test.yml").read_text())
    checked = 0
    for case in document["tests"]:
        for expectation in case["alert_rule_test"]:
            for alert in expectation["exp_alerts"]:
                labels = {"alertname": expectation["alertname"], **alert["exp_labels"]}
                if labels["alertname"] in NO_RUNBOOK:
                    continue
                resolution = resolve(labels, alert.get("exp_annotations", {}), seeds)
                assert isinstance(resolution, Matched), labels
                assert resolution.runbook.id == EXPECTED_RUNBOOK[labels["alertname"]]
                assert resolution.target.namespace == "musearoo"
                checked += 1
    assert checked == 5


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:  # 127.0.0.1 only
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_real_prometheus_loads_the_rules_and_accepts_every_verify_query(
    prometheus: Prometheus, seeds: RunbookSet
) -> None:
    prometheus.configure(scrape_targets={}, rule_files=["rules/*.yml"])
    try:
        deadline = time.monotonic() + 30
        while True:
            groups = _get(f"{prometheus.url}/api/v1/rules")["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            if len(rules) == 6 and all(rule["health"] == "ok" for rule in rules):
                break
            assert time.monotonic() < deadline, rules
            time.sleep(0.2)  # polling the server's own evaluation, with a deadline
        labels = {
            "namespace": "musearoo",
            "engine": 'mel"ody\\',  # escaping must keep even this a plain string
            "service": "ws-hub",
        }
        queried = 0
        for runbook in seeds.runbooks:
            for step in runbook.steps:
                query = render_verify_promql(step, labels, {})
                if query is None:
                    continue
                url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
                assert _get(url)["status"] == "success", query
                queried += 1
        assert queried >= 6
    finally:
        prometheus.configure(scrape_targets={}, rule_files=[])
