"""Configuration that fails fast: a worker needs only the services its runbooks use.

A runbook set that needs only Redis runs, dry, on a machine with no Kubernetes
configuration at all; a runbook that needs Kubernetes there stops the worker at start-up
with one message naming the runbook, the action and the setting to set.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from e2e_support import WorkerProcess
from recording import Bus

from responder.models.incidents import AuditEvent
from responder.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REDIS_ONLY_TEMPLATE = """\
apiVersion: responder/v1
id: redis_only
match:
  alertname: CacheCold
target:
  namespace: "{{ labels.namespace }}"
  name: "{{ labels.service }}"
steps:
  - action: cache.clear
    with: {pattern: "ff{run}:*"}
    timeout: 30s
escalation:
  after: 10m
  chain:
    - notify: slack
      channel: "#incidents"
"""

REDIS_ONLY = REDIS_ONLY_TEMPLATE.replace("{run}", "x")
NEEDS_KUBE = (
    REDIS_ONLY_TEMPLATE.replace("id: redis_only", "id: needs_kube")
    .replace("alertname: CacheCold", "alertname: Stuck")
    .replace(
        '  - action: cache.clear\n    with: {pattern: "ff{run}:*"}\n',
        "  - action: deployment.restart\n",
    )
)
assert "deployment.restart" in NEEDS_KUBE


def no_cluster_env(tmp_path: Path, runbooks: Path, **extra: str) -> dict[str, str]:
    """No kubeconfig anywhere: KUBECONFIG names a missing file, HOME has no ~/.kube."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "HOME": str(home),
        "KUBERNETES_SERVICE_HOST": "",
        "RESPONDER_REMEDIATION__RUNBOOKS_DIR": str(runbooks),
        **extra,
    }


def runbook_dir(tmp_path: Path, *texts: str) -> Path:
    directory = tmp_path / "runbooks-under-test"
    directory.mkdir()
    for i, text in enumerate(texts):
        (directory / f"r{i}.yaml").write_text(text)
    return directory


async def test_a_dry_run_redis_step_runs_with_no_cluster_configured(
    settings: Settings, tmp_path: Path, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    run = uuid.uuid4().hex[:8]
    cache = redis.asyncio.Redis.from_url(redis_server.url)
    await cache.mset({f"ff{run}:{i}": b"cold" for i in range(3)})
    env = no_cluster_env(
        tmp_path,
        runbook_dir(tmp_path, REDIS_ONLY_TEMPLATE.replace("{run}", run)),
        RESPONDER_REMEDIATION__DRY_RUN="true",
        RESPONDER_ACTIONS__REDIS_URLS=json.dumps({"default": redis_server.url}),
        RESPONDER_ACTIONS__ALLOWED_NAMESPACES=json.dumps(["musearoo"]),
    )
    bus = Bus(settings)
    await bus.start()
    worker = WorkerProcess(settings, tmp_path / "worker.log", env=env)
    try:
        labels = {"alertname": "CacheCold", "namespace": "musearoo", "service": "cache-engine"}
        fired = await bus.fire(labels)
        fired_at = asyncio.get_running_loop().time()

        def finished(records: list[tuple[bytes, bytes]]) -> bool:
            return any(e.kind == "remediation.action_finished" for e in audits(records))

        records = await bus.read("audit", until=finished, timeout_s=60)
        took = asyncio.get_running_loop().time() - fired_at
    finally:
        await bus.stop()
        code = await asyncio.to_thread(worker.stop, timeout_s=30)
    events = [e for e in audits(records) if e.incident_key == fired.incident_key]
    started = next(e for e in events if e.kind == "remediation.action_started")
    done = next(e for e in events if e.kind == "remediation.action_finished")
    assert started.data["dry_run"] is True, started
    assert done.data["ok"] is True, (done, worker.log_tail())
    assert done.data["detail"] == f"would delete 3 keys matching 'ff{run}:*'", done
    assert len(await cache.keys(f"ff{run}:*")) == 3  # dry: nothing deleted
    await cache.aclose()
    assert "ConfigException" not in worker.log_tail()
    # The step's own timeout is 30 s: the result came from the action, not from giving up.
    assert took < 20, took
    assert code == 0, worker.log_tail()


def audits(records: list[tuple[bytes, bytes]]) -> list[AuditEvent]:
    return [AuditEvent.model_validate_json(value) for _, value in records]


async def test_a_runbook_that_needs_kubernetes_stops_the_worker_at_start_up(
    settings: Settings, tmp_path: Path, redis_server: Any
) -> None:
    env = no_cluster_env(
        tmp_path,
        runbook_dir(tmp_path, REDIS_ONLY, NEEDS_KUBE),
        RESPONDER_ACTIONS__REDIS_URLS=json.dumps({"default": redis_server.url}),
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log", env=env)
    try:
        code = await asyncio.to_thread(worker.process.wait, 60)
    finally:
        await asyncio.to_thread(worker.stop, timeout_s=10)
    log = worker.log_tail()
    assert code != 0, log
    refusal = [line for line in log.splitlines() if "needs_kube" in line]
    assert any(
        "deployment.restart" in line and "needs Kubernetes" in line and "KUBECONFIG" in line
        for line in refusal
    ), log
    assert "redis_only" not in log, log  # the runbook whose services are configured is fine
    assert "Traceback" not in log, log
