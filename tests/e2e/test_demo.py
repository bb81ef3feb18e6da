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


def test_demo_opens_remediates_and_resolves_an_incident(demo_env: dict[str, str]) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "responder.cli",
            "--log-format",
            "console",
            "demo",
            "--timeout",
            "120",
        ],
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "incident.open" in log
    assert "remediation.action_started" in log
    assert '"action": "cache.clear"' in log
    assert "generation cache keys left in Redis: 0" in log
    assert "incident.resolved" in log
    # stdout carries the two incident records the demo prints
    assert done.stdout.count('"incident_id"') >= 2
