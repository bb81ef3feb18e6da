"""``responder stack up`` starts the control plane with the rest of the stack; ``--no-kube``
leaves it out; ``down`` stops it. Run as a developer runs them, as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder_dev.stack.process import free_port, port_open

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

RESPONDER = str(Path(sys.executable).with_name("responder"))
OTHERS = ("kafka", "redis", "alertmanager", "prometheus")


@pytest.fixture
def kube_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "RESPONDER_STACK__ROOT_DIR": str(tmp_path / "stack")}
    for port in ("APISERVER", "ETCD", "ETCD_PEER", "CONTROLLER_MANAGER", "SCHEDULER", "KWOK"):
        env[f"RESPONDER_KUBE_STACK__{port}_PORT"] = str(free_port())
    try:
        yield env
    finally:
        subprocess.run([RESPONDER, "stack", "down"], env=env, capture_output=True, check=False)


def responder(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RESPONDER, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def states(env: dict[str, str]) -> tuple[int, dict[str, str]]:
    done = responder(env, "stack", "status", "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, {row["name"]: row["state"] for row in rows}


def test_stack_up_starts_reuses_and_stops_the_control_plane(kube_env: dict[str, str]) -> None:
    without = [f"--without={name}" for name in OTHERS]
    first = responder(kube_env, "stack", "up", *without)
    assert first.returncode == 0, first.stderr
    assert "kube: control plane ready" in first.stderr
    assert states(kube_env)[1]["kube"] == "ready"

    home = Path(kube_env["RESPONDER_STACK__ROOT_DIR"]) / "kube"
    assert (home / "kubeconfig" / "responder.kubeconfig").is_file()
    assert (home / "kubectl-cache").is_dir()  # not the developer's ~/.kube

    again = responder(kube_env, "stack", "up", *without)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already running") == 5  # etcd, apiserver, KCM, scheduler, kwok

    down = responder(kube_env, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert states(kube_env)[1]["kube"] == "stopped"
    assert not port_open(int(kube_env["RESPONDER_KUBE_STACK__APISERVER_PORT"]))
    assert not port_open(int(kube_env["RESPONDER_KUBE_STACK__ETCD_PORT"]))


def test_no_kube_leaves_the_control_plane_out_of_up_and_status(kube_env: dict[str, str]) -> None:
    without = [f"--without={name}" for name in OTHERS if name != "redis"]
    kube_env["RESPONDER_STACK__REDIS_PORT"] = str(free_port())
    done = responder(kube_env, "stack", "up", "--no-kube", *without)
    assert done.returncode == 0, done.stderr
    assert "kube" not in states(kube_env)[1]
    assert not port_open(int(kube_env["RESPONDER_KUBE_STACK__APISERVER_PORT"]))
