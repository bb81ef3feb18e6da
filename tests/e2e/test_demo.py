"""The README's main job, ``responder demo``, run as a user runs it: a whole stack of its own.

Everything it starts (Kafka, Redis, Alertmanager, Prometheus, the Kubernetes control
plane, ingest, the worker) gets free ports and a temporary root, so it runs beside the
session's fixtures; the stack is taken down afterwards whatever happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder_dev.stack.process import free_ports

pytestmark = [pytest.mark.slow, pytest.mark.k8s]


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    ports = iter(free_ports(14))
    env = dict(os.environ)
    env.update(
        {
            "RESPONDER_STACK__ROOT_DIR": str(tmp_path / "stack"),
            "RESPONDER_STACK__KAFKA_PORT": str(next(ports)),
            "RESPONDER_STACK__KAFKA_CONTROLLER_PORT": str(next(ports)),
            "RESPONDER_STACK__REDIS_PORT": str(next(ports)),
            "RESPONDER_STACK__PROMETHEUS_PORT": str(next(ports)),
            "RESPONDER_STACK__ALERTMANAGER_PORT": str(next(ports)),
            "RESPONDER_KUBE_STACK__APISERVER_PORT": str(next(ports)),
            "RESPONDER_KUBE_STACK__ETCD_PORT": str(next(ports)),
            "RESPONDER_KUBE_STACK__ETCD_PEER_PORT": str(next(ports)),
            "RESPONDER_KUBE_STACK__CONTROLLER_MANAGER_PORT": str(next(ports)),
            "RESPONDER_KUBE_STACK__SCHEDULER_PORT": str(next(ports)),
            "RESPONDER_KUBE_STACK__KWOK_PORT": str(next(ports)),
            "RESPONDER_INGEST__PORT": str(next(ports)),
            "RESPONDER_WORKER__WEB_PORT": str(next(ports)),
        }
    )
    env.pop("RESPONDER_INGEST__BEARER_TOKEN", None)
    env.pop("KUBECONFIG", None)
    yield env
    subprocess.run(
        [sys.executable, "-m", "responder.cli", "stack", "down"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=180,
        check=False,
    )


def test_demo_ci_heals_pages_and_checks_every_scenario(demo_env: dict[str, str]) -> None:
    """``responder demo --ci`` asserts, from the audit topic and the local Slack and PagerDuty,
    each scenario's steps, the verification values and the page; here its output is checked
    too: the timelines a person reads, with no raw JSON in the default output."""
    done = subprocess.run(
        [sys.executable, "-m", "responder.cli", "--log-format", "console", "demo", "--ci"],
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out, log = done.stdout, done.stderr
    assert done.returncode == 0, (out + log)[-6000:]
    assert "--ci: every scenario went as it should" in log
    assert not any(line.lstrip().startswith("{") for line in out.splitlines())
    for n in (1, 2, 3):
        assert f"Scenario {n}:" in out
    s1, s2, s3 = (out.split(f"Scenario {n}:")[1] for n in (1, 2, 3))
    s1, s2 = s1.split("Scenario 2:")[0], s2.split("Scenario 3:")[0]
    s3 = s3.split("Summary")[0]
    in_order(
        s1,
        "poisoned keys",
        "Prometheus alert HighGenerationLatency pending",
        "Prometheus alert HighGenerationLatency firing",
        "Alertmanager delivered HighGenerationLatency (firing)",
        "opened",
        "step 1 cache.clear started",
        "step 1 cache.clear finished: ok",
        "verification of step 1 held: saw 0.0",
        "incident resolved (verified)",
    )
    in_order(
        s2,
        "model stuck in pods",
        "step 1 cache.clear started",
        "verification of step 1 failed",
        "step 2 deployment.restart started",
        "verification of step 2 held: saw 0.92",
        "incident resolved (verified)",
    )
    in_order(
        s3,
        "hard fault",
        "step 1 cache.clear started",
        "Slack post in",  # the incident's one message, posted as remediation starts
        "verification of step 1 failed",
        "automation stops: steps exhausted",
        "escalated: level 1 (slack)",
        "escalated: level 2 (pagerduty)",
        "PagerDuty trigger",
        "presses Acknowledge in Slack (signed request): HTTP 200",
        "PagerDuty shows acknowledged",
        "a person fixes the engine",
        "PagerDuty resolve",
    )
    assert out.count("PagerDuty trigger") == 1
    assert "Summary" in out
    assert "responder incidents show " in out

    # The history of the first incident, read back from the audit topic by the runtime CLI.
    first = out.split("responder incidents show ")[1].split()[0]
    shown = subprocess.run(
        [sys.executable, "-m", "responder.cli", "incidents", "show", first],
        env=demo_env
        | {"RESPONDER_KAFKA__BOOTSTRAP": f"127.0.0.1:{demo_env['RESPONDER_STACK__KAFKA_PORT']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "step 1 verified: 1 series satisfy the query" in shown.stdout
    assert "resolved (verified)" in shown.stdout


def in_order(text: str, *parts: str) -> None:
    at = 0
    for part in parts:
        found = text.find(part, at)
        assert found >= 0, f"{part!r} missing after position {at} in:\n{text}"
        at = found + len(part)
