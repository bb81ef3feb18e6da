"""Property tests: the indexed matcher agrees with a naive reading of the language, and no label
value, however crafted, becomes an unchecked Kubernetes name or rewrites a PromQL query."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from runbook_support import MINIMAL

from responder.runbooks.catalog import RunbookSet
from responder.runbooks.loader import load_text
from responder.runbooks.promql import PromQLRenderError, parse_promql_template, render_promql
from responder.runbooks.resolve import InvalidTarget, Matched, NoMatch, resolve
from responder.runbooks.schema import Runbook

LABELS = ["alertname", "severity", "engine", "region"]
VALUES = ["a", "b", "c", "ab"]
PATTERNS = ["a|b", "a.*", ".*", "b?", "[bc]+"]

CRAFTED = [
    "x; rm -rf /",
    "../../etc",
    "a" * 300,
    "\u043c\u0435l\u043edy",  # Cyrillic em, ie, o: looks like "melody"
    "melody\n",
    "melody\u200b",  # zero-width space
    "MELODY",
    "-melody",
    "melody-",
    "\u212aelvin",  # Kelvin sign, folds to "k" under IGNORECASE
    "mel.ody",
    "{{ labels.namespace }}",  # a value is never expanded a second time
    "$(reboot)",
    "`id`",
    "melody\x00",
    'x"} or vector(1) #',
]


def _naive_holds(spec: Any, value: str) -> bool:
    if isinstance(spec, str):
        return value == spec
    if isinstance(spec, list):
        return value in spec
    if "regex" in spec:
        return re.fullmatch(spec["regex"], value) is not None
    if "present" in spec:
        return value != ""
    return value == ""


def _weight(spec: Any) -> int:
    if isinstance(spec, str):
        return 4
    if isinstance(spec, list):
        return 3 if len(spec) > 1 else 4
    return 2 if "regex" in spec else 1


condition = st.one_of(
    st.sampled_from(VALUES),
    st.lists(st.sampled_from(VALUES), min_size=1, max_size=3, unique=True),
    st.sampled_from(PATTERNS).map(lambda pattern: {"regex": pattern}),
    st.just({"present": True}),
    st.just({"absent": True}),
)
match_spec = st.dictionaries(st.sampled_from(LABELS), condition, max_size=4)


def _runbook(index: int, match: dict[str, Any], priority: int) -> Runbook:
    return Runbook.model_validate(
        {
            "apiVersion": "responder/v1",
            "id": f"rb{index}",
            "priority": priority,
            "match": match,
            "target": {"namespace": "ns", "name": "{{ labels.engine }}"},
            "steps": [{"action": "deployment.restart"}],
            "escalation": {"after": "1m", "chain": [{"notify": "slack", "channel": "#x"}]},
        }
    )


alerts = st.dictionaries(
    st.sampled_from(LABELS), st.sampled_from([*VALUES, "", "zz"]), max_size=len(LABELS)
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(st.tuples(match_spec, st.integers(0, 2)), min_size=1, max_size=12),
    labels=st.lists(alerts, min_size=1, max_size=10),
)
def test_matcher_agrees_with_a_naive_reading(
    specs: list[tuple[dict[str, Any], int]], labels: list[dict[str, str]]
) -> None:
    runbooks = [_runbook(index, match, priority) for index, (match, priority) in enumerate(specs)]
    matcher = RunbookSet.of(runbooks).matcher
    for alert in labels:
        candidates = [
            (-priority, -sum(_weight(spec) for spec in match.values()), f"rb{index}")
            for index, (match, priority) in enumerate(specs)
            if all(_naive_holds(spec, alert.get(label, "")) for label, spec in match.items())
        ]
        expected = min(candidates)[2] if candidates else None
        found = matcher.match(alert)
        assert (found.id if found else None) == expected, (alert, specs)
        explanation = matcher.explain(alert)
        assert (explanation.winner.runbook.id if explanation.winner else None) == expected


TEMPLATED = Runbook.model_validate(
    {
        "apiVersion": "responder/v1",
        "id": "templated",
        "match": {"alertname": "X"},
        "target": {
            "namespace": "{{ labels.namespace }}",
            "name": "{{ labels.engine }}-engine",
            "region": "r-{{ annotations.region }}",
        },
        "steps": [{"action": "deployment.restart"}],
        "escalation": {"after": "1m", "chain": [{"notify": "slack", "channel": "#x"}]},
    }
)
TEMPLATED_SET = RunbookSet.of([TEMPLATED])
# Independent of the code under test: RFC 1123 label, ASCII only, spelled out by hand.
ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def _is_name(value: str) -> bool:
    return 0 < len(value) <= 63 and set(value) <= ALLOWED and value[0] != "-" and value[-1] != "-"


label_value = st.one_of(
    st.text(max_size=80),
    st.sampled_from(CRAFTED),
    st.from_regex(r"[a-z0-9-]{1,70}", fullmatch=True),
)


@settings(max_examples=500)
@given(namespace=label_value, engine=label_value, region=label_value)
@example(namespace="musearoo", engine="melody", region="eu")
@example(namespace="musearoo", engine="x; rm -rf /", region="eu")
@example(namespace="../../etc", engine="melody", region="eu")
@example(namespace="musearoo", engine="a" * 300, region="eu")
@example(namespace="musearoo", engine="\u043c\u0435l\u043edy", region="eu")
@example(namespace="musearoo", engine="{{ labels.namespace }}", region="eu")
def test_no_label_value_yields_an_unchecked_name(namespace: str, engine: str, region: str) -> None:
    labels = {"alertname": "X", "namespace": namespace, "engine": engine}
    resolution = resolve(labels, {"region": region}, TEMPLATED_SET)
    values_ok = _is_name(namespace) and _is_name(f"{engine}-engine") and _is_name(f"r-{region}")
    if isinstance(resolution, Matched):
        target = resolution.target
        assert _is_name(target.namespace)
        assert _is_name(target.name)
        assert target.region is not None
        assert _is_name(target.region)
        assert (target.namespace, target.name, target.region) == (
            namespace,
            f"{engine}-engine",
            f"r-{region}",
        )
        assert resolution.incident_key == f"templated:{namespace}/{engine}-engine"
    else:
        assert isinstance(resolution, InvalidTarget)
        assert not values_ok
        # the fallback key never carries the raw value
        assert re.fullmatch(r"templated:invalid-target/[0-9a-f]{16}", resolution.incident_key)
    assert isinstance(resolution, Matched) == values_ok


def test_no_match_is_a_value() -> None:
    assert resolve({"alertname": "Other"}, {}, TEMPLATED_SET) == NoMatch(alertname="Other")


QUERY = parse_promql_template(
    'rate(http_errors_total{namespace="{{ labels.namespace }}", engine!="{{ labels.engine }}"}[5m]) > 1'
)


@settings(max_examples=500)
@given(
    namespace=st.one_of(st.text(min_size=1), st.sampled_from(CRAFTED)), engine=st.text(min_size=1)
)
@example(namespace='x"} or vector(1) #', engine="\\")
@example(namespace='"', engine='\\"')
def test_label_values_stay_string_literals_in_promql(namespace: str, engine: str) -> None:
    labels = {"namespace": namespace, "engine": engine}
    try:
        query = render_promql(QUERY, labels, {})
    except PromQLRenderError:
        # only values that are not Unicode text at all are refused
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in namespace + engine)
        return
    seen: dict[str, str] = {}

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name == "http_errors_total"
            for matcher in node.matchers.matchers:
                seen[matcher.name] = matcher.value
        return True

    expr = promql_parser.parse(query)
    promql_parser.walk(expr, visit)
    assert seen == {"namespace": namespace, "engine": engine}
    assert isinstance(expr, promql_parser.BinaryExpr)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["5m", "x", "#a", "{{ labels.a }}"]),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "match",
                    "steps",
                    "with",
                    "action",
                    "verify",
                    "promql",
                    "chain",
                    "notify",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    document=st.dictionaries(
        st.sampled_from(["apiVersion", "id", "match", "target", "steps", "escalation", "bogus"]),
        yaml_values,
    )
)
def test_the_loader_reports_and_never_crashes_on_any_structure(document: dict[str, Any]) -> None:
    text = json.dumps(document)  # JSON is YAML
    runbook, _tree, errors = load_text(text, "fuzz.yaml")
    assert (runbook is None) == bool(errors)
    for error in errors:
        assert error.line >= 1
        assert error.column >= 1
        assert str(error).startswith("fuzz.yaml:")


@settings(max_examples=300)
@given(
    cut=st.integers(0, len(MINIMAL)),
    insert=st.sampled_from(["", ":", "- ", "{", "  ", "\t", "'", "&a ", "*a"]),
)
def test_the_loader_survives_any_edit_of_a_valid_runbook(cut: int, insert: str) -> None:
    text = MINIMAL[:cut] + insert + MINIMAL[cut:]
    runbook, _tree, errors = load_text(text, "edit.yaml")
    assert (runbook is None) == bool(errors)
