"""``responder stack up|down|status`` as a developer runs it, and the ``Stack`` registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder.errors import ConfigError
from responder_dev.settings import DevSettings
from responder_dev.stack.process import free_port, port_open
from responder_dev.stack.redis import Redis
from responder_dev.stack.stack import SERVICES, Stack, webhook_token

RESPONDER = str(Path(sys.executable).with_name("responder"))


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a whole stack on free ports under ``tmp_path``; stopped afterwards."""
    kafka_port = free_port()
    env = {
        **os.environ,
        "RESPONDER_STACK__ROOT_DIR": str(tmp_path / "stack"),
        "RESPONDER_STACK__KAFKA_PORT": str(kafka_port),
        "RESPONDER_STACK__KAFKA_CONTROLLER_PORT": str(free_port()),
        "RESPONDER_STACK__REDIS_PORT": str(free_port()),
        "RESPONDER_STACK__PROMETHEUS_PORT": str(free_port()),
        "RESPONDER_STACK__ALERTMANAGER_PORT": str(free_port()),
        "RESPONDER_KAFKA__BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "RESPONDER_INGEST__PORT": str(free_port()),
    }
    env.pop("RESPONDER_INGEST__BEARER_TOKEN", None)
    try:
        yield env
    finally:
        subprocess.run([RESPONDER, "stack", "down"], env=env, capture_output=True, check=False)


def _responder(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RESPONDER, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _states(env: dict[str, str]) -> tuple[int, dict[str, dict[str, object]]]:
    done = _responder(env, "stack", "status", "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, {row["name"]: row for row in rows}


@pytest.mark.slow
def test_up_status_reuse_and_down(stack_env: dict[str, str]) -> None:
    first = _responder(stack_env, "stack", "up", "--no-kube")
    assert first.returncode == 0, first.stderr
    assert "kafka: formatting a new KRaft log dir" in first.stderr
    assert "stack ready" in first.stderr

    code, states = _states(stack_env)
    assert code == 0
    names = [spec.name for spec in SERVICES if spec.name != "kube"]
    assert {name: states[name]["state"] for name in names} == dict.fromkeys(names, "ready")
    pids = {name: states[name]["pid"] for name in names}

    again = _responder(stack_env, "stack", "up", "--no-kube")
    assert again.returncode == 0, again.stderr
    assert "formatting" not in again.stderr
    assert again.stderr.count("already running") == len(names)
    assert {name: _states(stack_env)[1][name]["pid"] for name in names} == pids

    down = _responder(stack_env, "stack", "down")
    assert down.returncode == 0, down.stderr
    code, states = _states(stack_env)
    assert code == 1
    assert {states[name]["state"] for name in names} == {"stopped"}
    for variable in ("KAFKA_PORT", "REDIS_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT"):
        assert not port_open(int(stack_env[f"RESPONDER_STACK__{variable}"]))


def test_up_without_a_service_leaves_it_out_of_up_and_status(stack_env: dict[str, str]) -> None:
    skipped = [f"--without={spec.name}" for spec in SERVICES if spec.name != "redis"]
    done = _responder(stack_env, "stack", "up", "--no-kube", *skipped)
    assert done.returncode == 0, done.stderr
    code, states = _states(stack_env)
    assert code == 0
    assert {name: row["state"] for name, row in states.items()} == {"redis": "ready"}
    assert not port_open(int(stack_env["RESPONDER_STACK__KAFKA_PORT"]))


def test_a_taken_port_is_reported_not_reused(
    stack_env: dict[str, str], redis_server: Redis
) -> None:
    env = {**stack_env, "RESPONDER_STACK__REDIS_PORT": str(redis_server.port)}
    done = _responder(env, "stack", "up", "--no-kube", "--without=kafka")
    assert done.returncode == 1
    assert "taken by another process" in done.stderr


def test_unknown_services_and_duplicates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such service"):
        Stack.from_settings(DevSettings(), skip={"postgres"}, root=tmp_path)
    services = Stack.from_settings(DevSettings(), root=tmp_path).services
    with pytest.raises(ConfigError, match="duplicate"):
        Stack([*services, services[0]])


def test_the_generated_webhook_token_is_private_and_stable(tmp_path: Path) -> None:
    settings = DevSettings()
    token = webhook_token(settings, tmp_path)
    assert len(token) >= 32
    assert webhook_token(settings, tmp_path) == token
    assert (tmp_path / "webhook-token").stat().st_mode & 0o077 == 0
