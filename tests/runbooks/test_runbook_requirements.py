"""A runbook set is checked against the services this process has before it is used.

The real action catalogue answers what each step needs; no Kubernetes configuration
exists (the kubeconfig named is a missing file, not in a pod). At start-up a shortfall is
one error naming every runbook, step, action and setting; on a hot reload the new set
is rejected and the old one stays in use.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from runbook_support import MINIMAL

from responder.actions.catalogue import ActionCatalogue
from responder.runbooks.catalog import RunbookSet
from responder.runbooks.loader import load_directory
from responder.runbooks.reload import RunbookStore
from responder.runbooks.requirements import RunbookRequirements, UnmetRequirements, unmet
from responder.settings import ActionsSettings, Settings

CACHE_ONLY = (
    MINIMAL.replace("id: minimal", "id: cache_only")
    .replace("alertname: Minimal", "alertname: CacheCold")
    .replace(
        "  - action: deployment.restart\n",
        '  - action: cache.clear\n    with: {pattern: "gen:*"}\n',
    )
)


def _cache_variant(id_: str, alertname: str, verify: str) -> str:
    """CACHE_ONLY under another id and alert name, its step verified by ``verify`` (YAML)."""
    return (
        CACHE_ONLY.replace("id: cache_only", f"id: {id_}")
        .replace("alertname: CacheCold", f"alertname: {alertname}")
        .replace(
            '    with: {pattern: "gen:*"}\n',
            f'    with: {{pattern: "gen:*"}}\n    verify: {verify}\n',
        )
    )


HTTP_CHECKED = _cache_variant(
    "http_checked", "GatewayDown", "{http: {base: gateway, path: /healthz, expect_status: [200]}}"
)
POD_PROBED = _cache_variant("pod_probed", "EngineSlow", "{probe: {}}")
BASE_PROBED = _cache_variant("base_probed", "EngineDown", "{probe: {base: drummaroo}}")


@pytest.fixture(autouse=True)
def _not_in_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def _settings(**actions: object) -> Settings:
    return Settings(actions=ActionsSettings(allowed_namespaces=["musearoo"], **actions))  # type: ignore[arg-type]


def _catalogue(settings: Settings, tmp_path: Path) -> ActionCatalogue:
    return ActionCatalogue(settings.actions, kubeconfig=str(tmp_path / "no-such-kubeconfig"))


def _set(directory: Path, **files: str) -> RunbookSet:
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    loaded = load_directory(directory).runbooks
    assert loaded is not None
    return loaded


def test_each_unmet_step_is_named_with_the_setting_to_set(
    runbook_dir: Path, tmp_path: Path
) -> None:
    settings = _settings(redis_urls={})  # no Redis, no HTTP bases
    runbooks = _set(runbook_dir, minimal=MINIMAL, cache_only=CACHE_ONLY, http_checked=HTTP_CHECKED)

    problems = unmet(runbooks.runbooks, settings, _catalogue(settings, tmp_path))

    expected = (
        "runbook 'minimal' step 1 (deployment.restart) needs Kubernetes: ",
        "runbook 'cache_only' step 1 (cache.clear) needs Redis: set RESPONDER_ACTIONS__REDIS_URLS",
        "runbook 'http_checked' step 1 (cache.clear) needs Redis: set RESPONDER_ACTIONS__REDIS_URLS",
        "runbook 'http_checked' step 1 (cache.clear) verification needs the HTTP base 'gateway': "
        "set RESPONDER_ACTIONS__HTTP_BASE_URLS",
    )
    for start in expected:
        assert len([p for p in problems if p.startswith(start)]) == 1, (start, problems)
    assert len(problems) == 4, problems
    (kube,) = [p for p in problems if "deployment.restart" in p]
    assert "no-such-kubeconfig" in kube, kube
    assert "set KUBECONFIG" in kube, kube


def test_configured_services_leave_nothing_unmet(runbook_dir: Path, tmp_path: Path) -> None:
    settings = _settings(
        redis_urls={"default": "redis://127.0.0.1:6399/0"},
        http_base_urls={"gateway": "http://127.0.0.1:8099"},
    )
    runbooks = _set(runbook_dir, cache_only=CACHE_ONLY, http_checked=HTTP_CHECKED)

    assert unmet(runbooks.runbooks, settings, _catalogue(settings, tmp_path)) == []


def test_an_invalid_redis_url_is_named(runbook_dir: Path, tmp_path: Path) -> None:
    settings = _settings(redis_urls={"default": "mongodb://127.0.0.1/0"})
    runbooks = _set(runbook_dir, cache_only=CACHE_ONLY)

    (problem,) = unmet(runbooks.runbooks, settings, _catalogue(settings, tmp_path))

    assert "RESPONDER_ACTIONS__REDIS_URLS['default'] is invalid" in problem, problem


def test_start_up_refuses_a_set_needing_kubernetes(runbook_dir: Path, tmp_path: Path) -> None:
    settings = _settings(redis_urls={"default": "redis://127.0.0.1:6399/0"})
    (runbook_dir / "cache_only.yaml").write_text(CACHE_ONLY)
    (runbook_dir / "minimal.yaml").write_text(MINIMAL)
    store = RunbookStore(
        runbook_dir,
        registry=CollectorRegistry(),
        admit=RunbookRequirements(settings, _catalogue(settings, tmp_path)),
    )

    with pytest.raises(UnmetRequirements) as refused:
        store.load_initial()

    message = str(refused.value)
    assert "runbook 'minimal' step 1 (deployment.restart) needs Kubernetes" in message
    assert "cache_only" not in message  # its Redis is configured


def test_a_reload_needing_an_unconfigured_family_is_rejected_and_the_old_set_kept(
    runbook_dir: Path, tmp_path: Path
) -> None:
    settings = _settings(redis_urls={"default": "redis://127.0.0.1:6399/0"})
    registry = CollectorRegistry()
    (runbook_dir / "cache_only.yaml").write_text(CACHE_ONLY)
    store = RunbookStore(
        runbook_dir,
        registry=registry,
        admit=RunbookRequirements(settings, _catalogue(settings, tmp_path)),
    )
    old = store.load_initial()
    # A new file whose step restarts a deployment: this worker has no cluster.
    temporary = tmp_path / ".minimal.yaml.tmp"
    temporary.write_text(MINIMAL)
    os.replace(temporary, runbook_dir / "minimal.yaml")

    outcome = store.reload()

    assert outcome.status == "rejected"
    assert outcome.refused is not None
    assert "runbook 'minimal' step 1 (deployment.restart) needs Kubernetes" in outcome.refused
    assert store.current is old
    assert [r.id for r in store.current.runbooks] == ["cache_only"]
    assert (
        registry.get_sample_value("responder_runbook_reloads_total", {"outcome": "rejected"}) == 1
    )
    assert registry.get_sample_value("responder_runbooks_loaded") == 1
    # Once the file is fixed to need only what is configured, the next reload applies it.
    (runbook_dir / "minimal.yaml").write_text(
        CACHE_ONLY.replace("id: cache_only", "id: minimal").replace("CacheCold", "Minimal")
    )
    assert store.reload().status == "applied"
    assert sorted(r.id for r in store.current.runbooks) == ["cache_only", "minimal"]


def test_a_probe_needs_kubernetes_for_pods_and_its_base_for_a_base_url(
    runbook_dir: Path, tmp_path: Path
) -> None:
    settings = _settings(redis_urls={"default": "redis://127.0.0.1:6399/0"})
    runbooks = _set(runbook_dir, pod_probed=POD_PROBED, base_probed=BASE_PROBED)

    problems = unmet(runbooks.runbooks, settings, _catalogue(settings, tmp_path))

    assert len(problems) == 2, problems
    pods, base = sorted(problems, key=lambda p: "pod_probed" not in p)
    assert pods.startswith(
        "runbook 'pod_probed' step 1 (cache.clear) probe of the target's pods needs Kubernetes: "
    ), pods
    assert "set KUBECONFIG" in pods
    assert base.startswith(
        "runbook 'base_probed' step 1 (cache.clear) verification needs the HTTP base "
        "'drummaroo': set RESPONDER_ACTIONS__HTTP_BASE_URLS"
    ), base
    configured = _settings(
        redis_urls={"default": "redis://127.0.0.1:6399/0"},
        http_base_urls={"drummaroo": "http://127.0.0.1:8099"},
    )
    left = unmet(runbooks.runbooks, configured, _catalogue(configured, tmp_path))
    assert [p.split(" step")[0] for p in left] == ["runbook 'pod_probed'"]
