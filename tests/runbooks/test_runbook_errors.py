"""Invalid runbooks, each with the exact error text an SRE would read (file:line:col path: message)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runbook_support import MINIMAL

from responder.runbooks.loader import load_directory, load_text

# (case id, replace this in MINIMAL, with this, expected errors)
CASES: list[tuple[str, str, str, list[str]]] = [
    (
        "unknown top-level key",
        "steps:\n",
        "stpes: []\nsteps:\n",
        ["rb.yaml:8:1 stpes: unknown key"],
    ),
    (
        "missing required key",
        'target:\n  namespace: "{{ labels.namespace }}"\n  name: "{{ labels.service }}"\n',
        "",
        ["rb.yaml:1:1 target: required"],
    ),
    (
        "wrong apiVersion",
        "responder/v1",
        "responder/v2",
        ["rb.yaml:1:1 apiVersion: must be 'responder/v1'"],
    ),
    (
        "bad id",
        "id: minimal",
        "id: Minimal-1",
        [
            "rb.yaml:2:1 id: 'Minimal-1' is not a runbook id (lower-case letters, digits and '_', "
            "starting with a letter)"
        ],
    ),
    (
        "unknown action",
        "action: deployment.restart",
        "action: deployment.reboot",
        [
            "rb.yaml:9:5 steps[0].action: unknown action 'deployment.reboot'; known: cache.clear, "
            "connections.reset, deployment.restart, deployment.rollback, deployment.scale, "
            "http.request, model.reload, notify, region.failback, region.failover"
        ],
    ),
    (
        "scale max below min",
        "  - action: deployment.restart\n",
        "  - action: deployment.scale\n    with:\n      factor: 2\n      min: 5\n      max: 3\n",
        ["rb.yaml:13:7 steps[0].with.max: must be ≥ steps[0].with.min"],
    ),
    (
        "scale needs factor or replicas",
        "  - action: deployment.restart\n",
        "  - action: deployment.scale\n    with: {max: 10}\n",
        ["rb.yaml:10:5 steps[0].with: set exactly one of factor or replicas"],
    ),
    (
        "unknown parameter",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    with: {wait: true, grace: 5s}\n",
        ["rb.yaml:10:24 steps[0].with.grace: unknown key"],
    ),
    (
        "cache.clear needs pattern or all",
        "  - action: deployment.restart\n",
        "  - action: cache.clear\n    with: {all: false}\n",
        ["rb.yaml:10:5 steps[0].with: set exactly one of pattern or all: true"],
    ),
    (
        "http.request to an absolute URL",
        "  - action: deployment.restart\n",
        "  - action: http.request\n    with: {base: api, path: 'https://evil.example/x'}\n",
        [
            "rb.yaml:10:23 steps[0].with.path: 'https://evil.example/x' must be a path starting "
            "with '/' (no scheme, host, '..' or spaces)"
        ],
    ),
    (
        "http.request path escaping the base",
        "  - action: deployment.restart\n",
        "  - action: http.request\n    with: {base: api, path: /a/../../admin}\n",
        [
            "rb.yaml:10:23 steps[0].with.path: '/a/../../admin' must be a path starting with '/' "
            "(no scheme, host, '..' or spaces)"
        ],
    ),
    (
        "failover backend not a Kubernetes name",
        "  - action: deployment.restart\n",
        "  - action: region.failover\n    with:\n      httproute: {name: api, primary: Primary, backup: b}\n",
        [
            "rb.yaml:11:30 steps[0].with.httproute.primary: 'Primary' is not a valid RFC 1123 name "
            "(lower-case letters, digits and '-', starting and ending with a letter or digit, "
            "at most 63 characters)"
        ],
    ),
    (
        "model.reload restart with an endpoint",
        "  - action: deployment.restart\n",
        "  - action: model.reload\n    with: {restart: true, port: 9000}\n",
        [
            "rb.yaml:10:5 steps[0].with: path, port, variant and concurrency do not apply when "
            "restart is true"
        ],
    ),
    (
        "bare number duration",
        "after: 60s",
        "after: 60",
        [
            "rb.yaml:11:3 escalation.after: must be a duration such as 30s, 5m, 1h or 1h30m, "
            "with its unit (got 60)"
        ],
    ),
    (
        "bad duration unit",
        "after: 60s",
        "after: 5d",
        ["rb.yaml:11:3 escalation.after: '5d' is not a duration such as 30s, 5m, 1h or 1h30m"],
    ),
    (
        "zero timeout",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    timeout: 0s\n",
        ["rb.yaml:10:5 steps[0].timeout: must be more than 0s"],
    ),
    (
        "verify window shorter than its interval",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {alert_resolved: true, within: 10s}\n",
        ["rb.yaml:10:5 steps[0].verify: within must be > 0s and ≥ every"],
    ),
    (
        "bad PromQL",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {promql: 'rate(x[5m]'}\n",
        ["rb.yaml:10:14 steps[0].verify.promql: invalid PromQL: unclosed left parenthesis"],
    ),
    (
        "placeholder outside a matcher value",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {promql: 'rate({{ labels.metric }}[5m]) > 1'}\n",
        [
            "rb.yaml:10:14 steps[0].verify.promql: {{ labels.metric }} must be the whole value of a "
            'label matcher with = or !=, e.g. {metric="{{ labels.metric }}"}'
        ],
    ),
    (
        "placeholder in a regex matcher",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {promql: 'up{job=~\"{{ labels.job }}\"} == 1'}\n",
        [
            "rb.yaml:10:14 steps[0].verify.promql: {{ labels.job }} must be the whole value of a "
            'label matcher with = or !=, e.g. {job="{{ labels.job }}"}'
        ],
    ),
    (
        "two kinds of verification",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {alert_resolved: true, promql: 'up == 1'}\n",
        [
            "rb.yaml:10:5 steps[0].verify: set exactly one of promql, http, probe or alert_resolved: true"
        ],
    ),
    (
        "template filter",
        "{{ labels.service }}",
        "{{ labels.service | lower }}",
        [
            "rb.yaml:7:3 target.name: {{ labels.service | lower }} is not allowed: only "
            "{{ labels.NAME }} or {{ annotations.NAME }} (no expressions, no filters)"
        ],
    ),
    (
        "template expression",
        "{{ labels.service }}",
        "{{ labels.service ~ '; rm -rf /' }}",
        [
            "rb.yaml:7:3 target.name: {{ labels.service ~ '; rm -rf /' }} is not allowed: only "
            "{{ labels.NAME }} or {{ annotations.NAME }} (no expressions, no filters)"
        ],
    ),
    (
        "template literal that can never be a name",
        "{{ labels.service }}",
        "{{ labels.service }}_Engine",
        [
            "rb.yaml:7:3 target.name: can never be a valid RFC 1123 name: the literal text "
            "contains 'E', '_'"
        ],
    ),
    (
        "static namespace not a name",
        '"{{ labels.namespace }}"',
        "kube_system",
        [
            "rb.yaml:6:3 target.namespace: 'kube_system' is not a valid RFC 1123 name (lower-case "
            "letters, digits and '-', starting and ending with a letter or digit, at most 63 "
            "characters)"
        ],
    ),
    (
        "unbalanced braces",
        "{{ labels.service }}",
        "{{ labels.service }",
        ["rb.yaml:7:3 target.name: '{{' without a matching '}}'"],
    ),
    (
        "match value not a string",
        "alertname: Minimal",
        "alertname: Minimal\n  port: 8080",
        ["rb.yaml:5:3 match.port: label values are strings: quote 8080"],
    ),
    (
        "match empty value",
        "alertname: Minimal",
        "alertname: Minimal\n  region: ''",
        [
            "rb.yaml:5:3 match.region: an empty value means the label is absent: write {absent: true}"
        ],
    ),
    (
        "match bad regex",
        "alertname: Minimal",
        "alertname: {regex: 'Min(imal'}",
        [
            "rb.yaml:4:3 match.alertname: invalid regular expression: missing ), unterminated "
            "subpattern at position 3"
        ],
    ),
    (
        "match present false",
        "alertname: Minimal",
        "alertname: Minimal\n  region: {present: false}",
        ["rb.yaml:5:3 match.region: write present: true (use the other form for the opposite)"],
    ),
    (
        "match bad label name",
        "alertname: Minimal",
        "alertname: Minimal\n  app.kubernetes.io/name: x",
        [
            "rb.yaml:5:3 match['app.kubernetes.io/name']: 'app.kubernetes.io/name' is not a Prometheus label name"
        ],
    ),
    (
        "unknown notifier",
        "notify: slack",
        "notify: email",
        [
            "rb.yaml:13:7 escalation.chain[0].notify: must be one of 'slack', 'pagerduty' (got 'email')"
        ],
    ),
    (
        "slack channel without #",
        'channel: "#incidents"',
        "channel: incidents",
        [
            "rb.yaml:14:7 escalation.chain[0].channel: 'incidents' is not a Slack channel such as #incidents"
        ],
    ),
    (
        "approval value",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    approval: yes\n",
        ["rb.yaml:10:5 steps[0].approval: must be 'required' or 'none'"],
    ),
    (
        "unreachable step after escalate-on-failure",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    on_failure: escalate\n  - action: deployment.rollback\n",
        [
            "rb.yaml:11:5 steps[1]: unreachable: steps[0] escalates on failure and success "
            "resolves the incident"
        ],
    ),
    (
        "automatic step with auto_recovery false",
        "steps:\n",
        "auto_recovery: false\nsteps:\n",
        [
            "rb.yaml:10:5 steps[0]: unreachable: auto_recovery is false, so only steps with "
            "approval: required can run",
            "rb.yaml:12:3 escalation.after: must be 0s when auto_recovery is false (escalate at once)",
        ],
    ),
    (
        "no steps with auto_recovery",
        "steps:\n  - action: deployment.restart\n",
        "steps: []\n",
        ["rb.yaml:8:1 steps: no steps: set auto_recovery: false to escalate at once"],
    ),
    (
        "duplicate step names",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    name: a\n  - action: deployment.rollback\n    name: a\n",
        ["rb.yaml:12:5 steps[1].name: duplicate step name (also steps[0])"],
    ),
    (
        "duplicate YAML key",
        "id: minimal\n",
        "id: minimal\nid: other\n",
        [
            'rb.yaml:3:1 (document): YAML: found duplicate key "id" with value "other" (original value: "minimal")'
        ],
    ),
    (
        "YAML syntax",
        "steps:\n",
        "steps: [\n",
        ["rb.yaml:9:3 (document): YAML: expected the node content, but found '-'"],
    ),
    (
        "probe: unknown key",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {probe: {port: 8080, confidence: 0.5}}\n",
        ["rb.yaml:10:34 steps[0].verify.probe.confidence: unknown key"],
    ),
    (
        "probe: failed cannot be accepted",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {probe: {accept: [failed]}}\n",
        [
            "rb.yaml:10:31 steps[0].verify.probe.accept[0]: must be 'quality_degraded' or "
            "'latency_degraded'"
        ],
    ),
    (
        "probe: confidence threshold above 1",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify:\n      probe:\n        min_confidence: 1.5\n",
        ["rb.yaml:12:9 steps[0].verify.probe.min_confidence: must be less than or equal to 1"],
    ),
    (
        "probe: latency threshold of zero",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify:\n      probe: {max_latency_ms: 0}\n",
        ["rb.yaml:11:15 steps[0].verify.probe.max_latency_ms: must be greater than 0"],
    ),
    (
        "probe: a base URL and a pod port",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify:\n      probe: {base: engine-api, port: 9000}\n",
        [
            "rb.yaml:11:7 steps[0].verify.probe: port is for the target's pods; a base URL "
            "carries its own port"
        ],
    ),
    (
        "probe: path with a host",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify:\n      probe: {path: 'http://evil.example/x'}\n",
        [
            "rb.yaml:11:15 steps[0].verify.probe.path: 'http://evil.example/x' must be a path "
            "starting with '/' (no scheme, host, '..' or spaces)"
        ],
    ),
    (
        "probe: and promql",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify: {probe: {}, promql: 'up == 1'}\n",
        [
            "rb.yaml:10:5 steps[0].verify: set exactly one of promql, http, probe or alert_resolved: true"
        ],
    ),
    (
        "probe: complexity not a number",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify:\n      probe: {complexity: high}\n",
        [
            "rb.yaml:11:15 steps[0].verify.probe.complexity: must be a valid number, unable to "
            "parse string as a number"
        ],
    ),
    (
        "probe: style not a name",
        "  - action: deployment.restart\n",
        "  - action: deployment.restart\n    verify:\n      probe: {style: 'Jazz Fusion!'}\n",
        [
            "rb.yaml:11:15 steps[0].verify.probe.style: 'Jazz Fusion!' is not a style name "
            "(lower-case letters, digits)"
        ],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [pytest.param(old, new, expected, id=name) for name, old, new, expected in CASES],
)
def test_invalid_runbook_reports_exact_errors(old: str, new: str, expected: list[str]) -> None:
    assert old in MINIMAL
    text = MINIMAL.replace(old, new, 1)
    runbook, _tree, errors = load_text(text, "rb.yaml")
    assert runbook is None
    assert [str(error) for error in errors] == expected


def test_a_probe_with_no_settings_takes_the_designs_values() -> None:
    text = MINIMAL.replace(
        "  - action: deployment.restart\n",
        "  - action: model.reload\n    verify: {probe: {}, within: 1m}\n",
    )
    runbook, _tree, errors = load_text(text, "rb.yaml")
    assert errors == []
    assert runbook is not None
    verify = runbook.steps[0].verify
    assert verify is not None
    assert verify.kind == "probe"
    assert verify.probe is not None
    assert verify.probe.model_dump() == {
        "base": None,
        "port": 8080,
        "path": "/v1/generate/test",
        "complexity": 0.5,
        "style": "test",
        "min_confidence": 0.7,
        "max_latency_ms": 200.0,
        "accept": [],
    }


def test_minimal_runbook_is_valid() -> None:
    runbook, _tree, errors = load_text(MINIMAL, "rb.yaml")
    assert errors == []
    assert runbook is not None


def test_every_error_of_a_directory_at_once(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(MINIMAL.replace("after: 60s", "after: soon"))
    (runbook_dir / "b.yaml").write_text(
        MINIMAL.replace("id: minimal", "id: other").replace("deployment.restart", "nope")
    )
    (runbook_dir / "c.yml").write_text("- not a mapping\n")
    (runbook_dir / "README.md").write_text("not a runbook")
    result = load_directory(runbook_dir, display_root=runbook_dir)
    assert result.runbooks is None
    assert [str(error) for error in result.errors] == [
        "a.yaml:11:3 escalation.after: 'soon' is not a duration such as 30s, 5m, 1h or 1h30m",
        "b.yaml:9:5 steps[0].action: unknown action 'nope'; known: cache.clear, "
        "connections.reset, deployment.restart, deployment.rollback, deployment.scale, "
        "http.request, model.reload, notify, region.failback, region.failover",
        "c.yml:1:1 (document): must be a mapping (one runbook per file)",
    ]


def test_duplicate_ids_across_files(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(MINIMAL)
    (runbook_dir / "b.yaml").write_text(MINIMAL.replace("Minimal", "Other"))
    result = load_directory(runbook_dir, display_root=runbook_dir)
    assert [str(error) for error in result.errors] == [
        "b.yaml:2:1 id: duplicate id 'minimal' (also a.yaml:2:1)"
    ]


def test_shadowed_runbook_never_matches(runbook_dir: Path) -> None:
    (runbook_dir / "broad.yaml").write_text(
        MINIMAL.replace("id: minimal", "id: broad\npriority: 10")
    )
    (runbook_dir / "narrow.yaml").write_text(
        MINIMAL.replace("id: minimal", "id: narrow").replace(
            "alertname: Minimal", "alertname: Minimal\n  severity: [warning, critical]"
        )
    )
    result = load_directory(runbook_dir, display_root=runbook_dir)
    assert [str(error) for error in result.errors] == [
        "narrow.yaml:3:1 match: never matches: every alert it matches goes to 'broad' first "
        "(priority 10, specificity 4 vs priority 0, specificity 7)"
    ]


def test_tied_runbooks(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(
        MINIMAL.replace("id: minimal", "id: by_engine").replace(
            "alertname: Minimal", "alertname: Minimal\n  engine: melody"
        )
    )
    (runbook_dir / "b.yaml").write_text(
        MINIMAL.replace("id: minimal", "id: by_region").replace(
            "alertname: Minimal", "alertname: Minimal\n  region: eu"
        )
    )
    result = load_directory(runbook_dir, display_root=runbook_dir)
    assert [str(error) for error in result.errors] == [
        "b.yaml:3:1 match: ties with 'by_engine': same priority 0 and specificity 8, and both "
        "match {'alertname': 'Minimal', 'engine': 'melody', 'region': 'eu'}; set priority on "
        "one of them"
    ]


def test_disjoint_runbooks_do_not_tie(runbook_dir: Path) -> None:
    for name, engine in (("a", "melody"), ("b", "harmony")):
        (runbook_dir / f"{name}.yaml").write_text(
            MINIMAL.replace("id: minimal", f"id: {name}").replace(
                "alertname: Minimal", f"alertname: Minimal\n  engine: {engine}"
            )
        )
    assert load_directory(runbook_dir).ok


def test_empty_and_missing_directories(tmp_path: Path) -> None:
    assert [str(e) for e in load_directory(tmp_path).errors] == [
        f"{tmp_path}:1:1 (document): no runbook files (*.yaml, *.yml)"
    ]
    assert [str(e) for e in load_directory(tmp_path / "nope").errors] == [
        f"{tmp_path / 'nope'}:1:1 (document): not a directory"
    ]


def test_alertname_absent_never_matches(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(
        MINIMAL.replace("alertname: Minimal", "alertname: {absent: true}")
    )
    result = load_directory(runbook_dir, display_root=runbook_dir)
    assert [str(error) for error in result.errors] == [
        "a.yaml:3:1 match: never matches: every alert has an alertname"
    ]


def test_keys_from_a_yaml_merge_point_at_the_anchor() -> None:
    text = MINIMAL.replace(
        "steps:\n  - action: deployment.restart\n",
        "defaults: &d\n  timeout: 30s\n  bogus: 1\n"
        "steps:\n  - <<: *d\n    action: deployment.restart\n",
    )
    _runbook, _tree, errors = load_text(text, "rb.yaml")
    assert [str(error) for error in errors] == [
        "rb.yaml:8:1 defaults: unknown key",
        "rb.yaml:10:3 steps[0].bogus: unknown key",
    ]


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    _runbook, _tree, errors = load_text("\n".join(lines) + "\n", "bomb.yaml")
    assert [str(error) for error in errors] == [
        "bomb.yaml:1:1 (document): more than 20000 values or 40 levels once aliases are expanded"
    ]


def test_hidden_and_non_yaml_files_are_not_runbooks(runbook_dir: Path) -> None:
    (runbook_dir / "a.yaml").write_text(MINIMAL)
    (runbook_dir / ".#a.yaml").write_text("garbage: [")
    (runbook_dir / "notes.txt").write_text("garbage: [")
    result = load_directory(runbook_dir)
    assert result.ok
