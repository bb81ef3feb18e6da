"""``responder runbooks validate|explain`` as a reviewer's CI runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from runbook_support import MINIMAL, SEED_DIR

from responder.cli import main

PAYLOAD = {
    "version": "4",
    "groupKey": '{}:{alertname="HighGenerationLatency"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "responder",
    "groupLabels": {"alertname": "HighGenerationLatency"},
    "commonLabels": {"alertname": "HighGenerationLatency"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "routeLabels": {},
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "HighGenerationLatency",
                "severity": "warning",
                "team": "musearoo",
                "namespace": "musearoo",
                "engine": "melody",
            },
            "annotations": {"summary": "slow"},
            "startsAt": "2026-11-30T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "c5d2a1b0e4f3a2b1",
        }
    ],
}


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--log-format", "console", *args])
    return result.exit_code, result.stdout, result.stderr


def test_validate_the_shipped_runbooks() -> None:
    code, out, _ = _run("runbooks", "validate", str(SEED_DIR))
    assert code == 0
    assert out == (
        f"{SEED_DIR}: 4 runbooks valid (ai_model_failure, database_performance, "
        "high_generation_latency, websocket_connection_issues)\n"
    )


def test_validate_lists_every_error_and_exits_1(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(MINIMAL.replace("60s", "1 minute"))
    (runbook_dir / "b.yaml").write_text(MINIMAL.replace("id: minimal", "id: b\nfoo: 1"))
    code, out, err = _run("runbooks", "validate", str(runbook_dir))
    assert code == 1
    assert out.splitlines() == [
        f"{runbook_dir}/a.yaml:11:3 escalation.after: '1 minute' is not a duration such as "
        "30s, 5m, 1h or 1h30m",
        f"{runbook_dir}/b.yaml:3:1 foo: unknown key",
    ]
    assert err == f"{runbook_dir}: 2 errors\n"


def test_validate_github_annotations(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(MINIMAL.replace("60s", "1 minute"))
    code, out, _ = _run("runbooks", "validate", "--format", "github", str(runbook_dir))
    assert code == 1
    assert out == (
        f"::error file={runbook_dir}/a.yaml,line=11,col=3::escalation.after: '1 minute' is not "
        "a duration such as 30s, 5m, 1h or 1h30m\n"
    )


def test_validate_json(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(MINIMAL)
    code, out, _ = _run("runbooks", "validate", "--format", "json", str(runbook_dir))
    assert code == 0
    assert json.loads(out) == {"ok": True, "runbooks": ["minimal"], "errors": []}


def test_explain_a_webhook_payload(tmp_path: Path) -> None:
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(PAYLOAD))
    code, out, _ = _run("runbooks", "explain", "--dir", str(SEED_DIR), str(alert_file))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[1] == (
        f"runbook: high_generation_latency ({SEED_DIR}/high_generation_latency.yaml), "
        "priority 0, specificity 7"
    )
    assert lines[2] == (
        "  why: alertname in ['HighGenerationLatency', 'high_generation_latency'] "
        "[ok: 'HighGenerationLatency']; "
        "severity in ['critical', 'warning'] [ok: 'warning']; engine present [ok: 'melody']"
    )
    assert "target: Deployment musearoo/melody-engine" in lines
    assert "incident key: high_generation_latency:musearoo/melody-engine" in lines
    assert (
        'step 3 scale-up: deployment.scale {"factor": 2.0, "hpa": "raise_min", "max": 20, '
        '"min": 1}; timeout 2m, retries 0, automatic, on failure next'
    ) in lines
    assert (
        'step 4 failover-backup-region: region.failover {"httproute": {"backup": '
        '"generation-backup", "backup_weight": 100, "name": "generation-api", "primary": '
        '"generation-primary"}}; timeout 1m, retries 0, approval required, on failure next'
    ) in lines
    assert (
        "  verify: promql histogram_quantile(0.95, sum by (le) (rate(musearoo_generation_latency_"
        'seconds_bucket{namespace="musearoo", engine="melody"}[1m]))) < 0.2, within 1m30s '
        "(every 15s)"
    ) in lines
    assert "  +5m at 2026-11-30T03:05:00+00:00: slack #musearoo-incidents" in lines
    assert "  +7m at 2026-11-30T03:07:00+00:00: pagerduty musearoo-oncall (critical)" in lines


def test_explain_near_miss_and_json(tmp_path: Path) -> None:
    alert = {
        "labels": {"alertname": "HighGenerationLatency", "severity": "info", "engine": "melody"},
    }
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(alert))
    code, out, _ = _run("runbooks", "explain", "--json", "--dir", str(SEED_DIR), str(alert_file))
    assert code == 0
    report = json.loads(out)
    assert report["runbook"] is None
    assert report["result"] == "no runbook matches: the alert opens no incident"
    miss = report["near_misses"][0]
    assert miss["id"] == "high_generation_latency"
    assert [c for c in miss["conditions"] if not c["holds"]] == [
        {
            "label": "severity",
            "condition": "in ['critical', 'warning']",
            "value": "info",
            "holds": False,
        }
    ]


def test_explain_a_crafted_label_shows_an_invalid_target(tmp_path: Path) -> None:
    alert = {
        "labels": {
            "alertname": "EngineHealthLow",
            "namespace": "musearoo",
            "engine": "x; rm -rf /",
        },
        "startsAt": "2026-11-30T03:00:00Z",
    }
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps([alert]))
    code, out, _ = _run("runbooks", "explain", "--dir", str(SEED_DIR), str(alert_file))
    assert code == 0
    assert (
        "result: invalid target: name: 'x; rm -rf /-engine' is not a valid RFC 1123 name; the "
        "incident is audited and escalated, no action runs"
    ) in out.splitlines()
    assert "  +0s at 2026-11-30T03:00:00+00:00: slack #musearoo-incidents" in out.splitlines()
    assert "step 1" not in out


def test_explain_refuses_bad_input(tmp_path: Path) -> None:
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps({"alerts": [{"labels": {"alertname": 3}}]}))
    code, _, err = _run("runbooks", "explain", "--dir", str(SEED_DIR), str(alert_file))
    assert code == 1
    assert "alerts[0].labels.alertname: Input should be a valid string" in err


def test_each_shipped_example_alert_explains_to_its_runbook() -> None:
    examples = sorted((SEED_DIR / "examples").glob("*.json"))
    assert [path.stem for path in examples] == [
        "ai_model_failure",
        "database_performance",
        "high_generation_latency",
        "websocket_connection_issues",
    ]
    for path in examples:
        code, out, _ = _run("runbooks", "explain", "--json", "--dir", str(SEED_DIR), str(path))
        assert code == 0, out
        report = json.loads(out)
        assert report["result"] == "matched"
        assert report["runbook"]["id"] == path.stem


def test_explain_a_resolved_alert(tmp_path: Path) -> None:
    alert = {**PAYLOAD["alerts"][0], "status": "resolved"}
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(alert))
    code, out, _ = _run("runbooks", "explain", "--json", "--dir", str(SEED_DIR), str(alert_file))
    assert code == 0
    report = json.loads(out)
    assert report["result"] == (
        "matched, resolved alert: it resolves the open incident with this key, no step runs"
    )
    assert report["incident_key"] == "high_generation_latency:musearoo/melody-engine"


def test_validate_against_the_alert_rules(tmp_path: Path) -> None:
    rules_dir = SEED_DIR.parent / "deploy" / "prometheus" / "rules"
    alerts_dir = SEED_DIR.parent / "alerts"
    code, _, _ = _run(
        "runbooks",
        "validate",
        "--rules",
        str(rules_dir),
        "--alerts",
        str(alerts_dir),
        str(SEED_DIR),
    )
    assert code == 0
    renamed = tmp_path / "rules"
    renamed.mkdir()
    (renamed / "musearoo.yml").write_text(
        (rules_dir / "musearoo.yml").read_text().replace("EngineHealthLow", "EngineHealthPoor")
    )
    code, out, _ = _run(
        "runbooks", "validate", "--rules", str(renamed), "--alerts", str(alerts_dir), str(SEED_DIR)
    )
    assert code == 1
    assert out == (
        f"{SEED_DIR}/ai_model_failure.yaml:8:3 match.alertname: no alert rule in {renamed} "
        "or alert definition fires 'EngineHealthLow'\n"
    )


def test_validate_against_the_rules_alone_misses_the_definitions_alerts() -> None:
    rules_dir = SEED_DIR.parent / "deploy" / "prometheus" / "rules"
    code, out, _ = _run("runbooks", "validate", "--rules", str(rules_dir), str(SEED_DIR))
    assert code == 1
    assert (
        f"{SEED_DIR}/ai_model_failure.yaml:8:3 match.alertname: no alert rule in {rules_dir} fires 'engine_health_degradation'"
        in out
    )
