"""The import contracts bite: one import that breaks each makes ``lint-imports`` fail.

Each case copies the two packages and the project file to a temporary folder, adds one
offending line (or module), and runs ``lint-imports`` on the copy, first on the
untouched copy (it must pass, or the case proves nothing) and then on the broken one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# (contract name as in pyproject.toml, file to touch, line to append)
CASES = [
    (
        "Layers point one way",
        "responder/models/incidents.py",
        "import responder.engine.machine",
    ),
    (
        "Layers point one way",
        "responder/settings.py",
        "import responder.models.alerts",
    ),
    (
        "Layers point one way",
        "responder/newcomer.py",  # a new top-level module not placed in a layer
        "import responder.errors",
    ),
    (
        "Inside streams",
        "streams/context.py",
        "import streams.remediate",
    ),
    (
        "Inside streams",
        "streams/notify.py",
        "import streams.remediate",
    ),
    (
        "The Faust wiring never reaches up",
        "streams/triage.py",
        "import responder.cli",
    ),
    (
        "Only the CLI imports the Faust wiring",
        "responder/ingest/app.py",
        "import streams.app",
    ),
    (
        "Integrations do not know each other",
        "responder/integrations/slack/blocks.py",
        "import responder.integrations.pagerduty.events",
    ),
    (
        "Guard rails are one small module each",
        "responder/engine/guards/cooldown.py",
        "import responder.engine.guards.admission",
    ),
    (
        "The runtime does not depend on the development package",
        "responder/models/alerts.py",
        "import responder_dev.stack.kafka",
    ),
    (
        "Development package: commands, demo, stack and fakes",
        "dev/responder_dev/settings.py",
        "import responder_dev.stack.kafka",
    ),
    (
        "Development package: commands, demo, stack and fakes",
        "dev/responder_dev/fakes/http.py",
        "import responder_dev.demo",
    ),
    (
        "Redis, HTTP and notification actions, and the runner, work without Kubernetes",
        "responder/actions/cache.py",
        "import kubernetes_asyncio",
    ),
    (
        "Redis, HTTP and notification actions, and the runner, work without Kubernetes",
        "responder/actions/runner.py",
        "import responder.actions.deployments",  # indirectly: deployments imports kube
    ),
    (
        "The domain core knows nothing of Kafka or Faust",
        "responder/engine/machine.py",
        "import aiokafka",
    ),
]


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("responder", "streams", "dev/responder_dev"):
        shutil.copytree(ROOT / package, tmp_path / Path(package).name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("contract", "path", "line"), CASES, ids=[f"{c[1]}:{c[2]}" for c in CASES])
def test_an_import_that_breaks_a_contract_fails_the_gate(
    tree: Path, contract: str, path: str, line: str
) -> None:
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    target = tree / path.removeprefix("dev/")
    before = target.read_text() if target.exists() else '"""A module of its own."""\n'
    target.write_text(before + f"\n{line}  # noqa\n")

    broken = _lint(tree)

    assert broken.returncode != 0, broken.stdout
    assert f"{contract}" in broken.stdout
    verdict = next(ln for ln in broken.stdout.splitlines() if ln.startswith(contract))
    assert "BROKEN" in verdict, broken.stdout
