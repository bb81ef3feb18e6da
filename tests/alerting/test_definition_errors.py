"""Invalid alert definitions, each with the exact error text an SRE reads (file:line:col path: message)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alerting_support import DEFINITION

from responder.alerting.loader import load_definition_text, load_definitions

REPO = Path(__file__).resolve().parents[2]

# (case id, replace this in DEFINITION, with this, expected errors)
CASES: list[tuple[str, str, str, list[str]]] = [
    (
        "unknown key",
        "context: true\n",
        "context: true\nfro: 1m\n",
        ["d.yaml:12:1 fro: unknown key"],
    ),
    ("missing expr", "expr: minimal_latency_seconds > 0.2\n", "", ["d.yaml:1:1 expr: required"]),
    (
        "wrong apiVersion",
        "responder/v1",
        "responder/v2",
        ["d.yaml:1:1 apiVersion: must be 'responder/v1'"],
    ),
    (
        "bad name",
        "name: minimal_latency",
        "name: minimal-latency",
        [
            "d.yaml:2:1 name: 'minimal-latency' is not an alert name (letters, digits and '_', "
            "not starting with a digit)"
        ],
    ),
    (
        "PromQL that does not parse",
        "minimal_latency_seconds > 0.2",
        "rate(minimal_latency_seconds[5m] > 0.2",
        ["d.yaml:3:1 expr: invalid PromQL: unclosed left parenthesis"],
    ),
    (
        "a range vector",
        "minimal_latency_seconds > 0.2",
        "minimal_latency_seconds[5m]",
        ["d.yaml:3:1 expr: a range vector cannot be an alert condition: wrap it, e.g. rate(...)"],
    ),
    (
        "a duration without unit",
        "for: 1m",
        "for: 60",
        ["d.yaml:4:1 for: must be a duration such as 30s, 5m, 1h or 1h30m, with its unit (got 60)"],
    ),
    (
        "interval below 1s",
        "interval: 15s",
        "interval: 0s",
        ["d.yaml:5:1 interval: must be at least 1s"],
    ),
    (
        "unknown severity",
        "severity: warning",
        "severity: page",
        ["d.yaml:6:1 severity: must be 'critical', 'warning' or 'info'"],
    ),
    (
        "alertname among the labels",
        "  team: musearoo\n",
        "  team: musearoo\n  alertname: Other\n",
        ["d.yaml:9:3 labels.alertname: alertname is set by the definition's name, not in labels"],
    ),
    (
        "severity among the labels",
        "  team: musearoo\n",
        "  severity: critical\n",
        ["d.yaml:8:3 labels.severity: severity is set by the definition's severity, not in labels"],
    ),
    (
        "a template naming annotations",
        "{{ labels.engine }}",
        "{{ annotations.engine }}",
        [
            "d.yaml:10:3 annotations.summary: {{ annotations.engine }}: only {{ labels.NAME }} "
            "here (the series' labels)"
        ],
    ),
    (
        "a template with a filter",
        "{{ labels.engine }}",
        "{{ labels.engine | upper }}",
        [
            "d.yaml:10:3 annotations.summary: {{ labels.engine | upper }} is not allowed: only "
            "{{ labels.NAME }} or {{ annotations.NAME }} (no expressions, no filters)"
        ],
    ),
    (
        "a label value that is a number",
        "team: musearoo",
        "team: 3",
        ["d.yaml:8:3 labels.team: must be a string: quote 3"],
    ),
    (
        "a label name Prometheus refuses",
        "team: musearoo",
        "2team: musearoo",
        ["d.yaml:8:3 labels.2team: '2team' is not a Prometheus label name"],
    ),
    (
        "context that is not a boolean",
        "context: true",
        "context: maybe",
        ["d.yaml:11:1 context: must be a valid boolean, unable to interpret input"],
    ),
    (
        "a negative keep_firing_for",
        "context: true\n",
        "context: true\nkeep_firing_for: -1m\n",
        ["d.yaml:12:1 keep_firing_for: '-1m' is not a duration such as 30s, 5m, 1h or 1h30m"],
    ),
    (
        "not a mapping",
        DEFINITION,
        "- a\n- b\n",
        ["d.yaml:1:1 (document): must be a mapping (one alert definition per file)"],
    ),
]


@pytest.mark.parametrize(
    ("replace", "by", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_definition(replace: str, by: str, expected: list[str]) -> None:
    assert replace in DEFINITION
    definition, _tree, errors = load_definition_text(DEFINITION.replace(replace, by, 1), "d.yaml")
    assert definition is None
    assert [str(error) for error in errors] == expected


def test_the_minimal_definition_is_valid() -> None:
    definition, _tree, errors = load_definition_text(DEFINITION, "d.yaml")
    assert errors == []
    assert definition is not None
    assert (definition.name, definition.for_, definition.interval) == (
        "minimal_latency",
        timedelta(minutes=1),
        timedelta(seconds=15),
    )
    assert definition.keep_firing_for == timedelta(0)
    assert definition.context is True


def test_every_error_of_a_folder_at_once(definitions_dir: Path) -> None:
    (definitions_dir / "a.yaml").write_text(DEFINITION.replace("for: 1m", "for: soon"))
    (definitions_dir / "b.yaml").write_text(DEFINITION)
    (definitions_dir / "c.yml").write_text(DEFINITION)  # the same name again
    (definitions_dir / "d.yaml").write_text("- not a mapping\n")
    (definitions_dir / "README.md").write_text("not a definition")
    result = load_definitions(definitions_dir, display_root=definitions_dir)
    assert result.definitions is None
    assert [str(error) for error in result.errors] == [
        "a.yaml:4:1 for: 'soon' is not a duration such as 30s, 5m, 1h or 1h30m",
        "c.yml:2:1 name: duplicate name 'minimal_latency' (also b.yaml:2:1)",
        "d.yaml:1:1 (document): must be a mapping (one alert definition per file)",
    ]


def test_an_empty_folder_is_an_error(definitions_dir: Path) -> None:
    result = load_definitions(definitions_dir)
    assert [str(error) for error in result.errors] == [
        f"{definitions_dir}:1:1 (document): no alert definition files (*.yaml, *.yml)"
    ]


def test_the_shipped_definitions_are_the_designs_five() -> None:
    result = load_definitions(REPO / "alerts")
    assert result.errors == ()
    assert result.definitions is not None
    shipped = {d.name: (d.expr, d.severity, d.context) for d in result.definitions.definitions}
    assert shipped == {
        "high_generation_latency": ("musearoo_generation_latency_seconds > 0.2", "warning", True),
        "low_user_satisfaction": (
            "rate(musearoo_user_satisfaction_total[5m]) < 0.8",
            "critical",
            True,
        ),
        "engine_health_degradation": ("musearoo_engine_health_score < 0.7", "warning", True),
        "websocket_latency_spike": (
            "musearoo_websocket_message_latency_seconds > 0.05",
            "warning",
            False,
        ),
        "session_error_rate": ("rate(musearoo_session_errors_total[5m]) > 0.1", "critical", True),
    }
