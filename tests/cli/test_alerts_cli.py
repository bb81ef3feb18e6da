"""``responder alerts validate`` as a reviewer's CI runs it: exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

from alerting_support import DEFINITION
from click.testing import CliRunner

from responder.cli import main

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--log-format", "console", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_shipped_definitions_validate() -> None:
    code, out, _ = _run("alerts", "validate", str(REPO / "alerts"))
    assert code == 0
    assert out == (
        f"{REPO / 'alerts'}: 5 definitions valid (engine_health_degradation, "
        "high_generation_latency, low_user_satisfaction, session_error_rate, "
        "websocket_latency_spike)\n"
    )


def test_errors_exit_1_with_every_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DEFINITION.replace("interval: 15s", "interval: 0s"))
    (tmp_path / "b.yaml").write_text(DEFINITION.replace("expr:", "exp:"))
    code, out, err = _run("alerts", "validate", str(tmp_path))
    assert code == 1
    assert out == (
        f"{tmp_path}/a.yaml:5:1 interval: must be at least 1s\n"
        f"{tmp_path}/b.yaml:1:1 expr: required\n"
        f"{tmp_path}/b.yaml:3:1 exp: unknown key\n"
    )
    assert err == f"{tmp_path}: 3 errors\n"


def test_github_and_json_formats(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DEFINITION.replace("severity: warning", "severity: page"))
    code, out, _ = _run("alerts", "validate", "--format", "github", str(tmp_path))
    assert code == 1
    assert out == (
        f"::error file={tmp_path}/a.yaml,line=6,col=1::severity: must be 'critical', "
        "'warning' or 'info'\n"
    )
    (tmp_path / "a.yaml").write_text(DEFINITION)
    code, out, _ = _run("alerts", "validate", "--format", "json", str(tmp_path))
    assert code == 0
    assert json.loads(out) == {"ok": True, "definitions": ["minimal_latency"], "errors": []}


def test_a_missing_folder_exits_1(tmp_path: Path) -> None:
    code, out, _ = _run("alerts", "validate", str(tmp_path / "nope"))
    assert code == 1
    assert out == f"{tmp_path / 'nope'}:1:1 (document): not a directory\n"
