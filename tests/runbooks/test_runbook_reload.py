"""Hot reload swaps the whole set or nothing; SIGHUP and file changes trigger it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from runbook_support import MINIMAL

from responder.errors import ConfigError
from responder.runbooks.reload import RunbookStore


def _write(directory: Path, name: str, text: str) -> None:
    """Write through a temporary file and a rename, as a deploy tool would: one complete event."""
    temporary = directory.parent / f".{name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, directory / name)


def _other(runbook_id: str) -> str:
    return MINIMAL.replace("id: minimal", f"id: {runbook_id}").replace(
        "alertname: Minimal", f"alertname: {runbook_id.title()}"
    )


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


@pytest.fixture
def store(runbook_dir: Path) -> RunbookStore:
    _write(runbook_dir, "minimal.yaml", MINIMAL)
    store = RunbookStore(runbook_dir, registry=CollectorRegistry(), clock=lambda: 1234.0)
    store.load_initial()
    return store


def test_initial_load_refuses_an_invalid_directory(runbook_dir: Path) -> None:
    _write(runbook_dir, "bad.yaml", MINIMAL.replace("60s", "sixty"))
    store = RunbookStore(runbook_dir, registry=CollectorRegistry())
    with pytest.raises(ConfigError, match=r"bad\.yaml:11:3 escalation\.after"):
        store.load_initial()
    with pytest.raises(ConfigError, match="never loaded"):
        _ = store.current


def test_a_bad_file_keeps_the_old_set(store: RunbookStore, runbook_dir: Path) -> None:
    registry = store.metrics.registry
    old = store.current
    assert _sample(registry, "responder_runbooks_loaded") == 1
    assert _sample(registry, "responder_runbook_last_reload_success_timestamp_seconds") == 1234.0
    # One valid new runbook and one broken file: none of it may become active.
    _write(runbook_dir, "good.yaml", _other("good"))
    _write(runbook_dir, "broken.yaml", _other("broken").replace("deployment.restart", "nope"))

    outcome = store.reload()

    assert outcome.status == "rejected"
    assert [str(error).split(" ", 1)[1] for error in outcome.errors] == [
        "steps[0].action: unknown action 'nope'; known: cache.clear, connections.reset, "
        "deployment.restart, deployment.rollback, deployment.scale, http.request, "
        "model.reload, notify, region.failback, region.failover"
    ]
    assert store.current is old
    assert sorted(store.current.by_id) == ["minimal"]
    assert store.current.matcher.match({"alertname": "Good"}) is None
    assert _sample(registry, "responder_runbook_reloads_total", outcome="rejected") == 1
    assert _sample(registry, "responder_runbook_load_errors_total") == 1

    (runbook_dir / "broken.yaml").unlink()
    assert store.reload().status == "applied"
    assert sorted(store.current.by_id) == ["good", "minimal"]
    assert store.current.matcher.match({"alertname": "Good"}) is not None
    good = store.lookup("good")
    assert good is not None
    assert good.id == "good"
    assert store.reload().status == "unchanged"
    assert _sample(registry, "responder_runbook_reloads_total", outcome="applied") == 1
    assert _sample(registry, "responder_runbook_reloads_total", outcome="unchanged") == 1
    assert _sample(registry, "responder_runbooks_loaded") == 2


def test_removing_every_file_is_rejected(store: RunbookStore, runbook_dir: Path) -> None:
    (runbook_dir / "minimal.yaml").unlink()
    assert store.reload().status == "rejected"
    assert sorted(store.current.by_id) == ["minimal"]


async def _until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_sighup_reloads(store: RunbookStore, runbook_dir: Path) -> None:
    remove = store.install_sighup(asyncio.get_running_loop())
    try:
        _write(runbook_dir, "hup.yaml", _other("hup"))
        os.kill(os.getpid(), signal.SIGHUP)
        await _until(lambda: "hup" in store.current.by_id, "the SIGHUP reload")
    finally:
        remove()


async def test_file_changes_reload_and_bad_edits_are_kept_out(
    store: RunbookStore, runbook_dir: Path
) -> None:
    stop = asyncio.Event()
    outcomes: list[str] = []
    watcher = asyncio.create_task(
        store.watch(stop, debounce_ms=20, on_reload=lambda outcome: outcomes.append(outcome.status))
    )
    try:
        # The watcher may not be watching yet when the first file lands: write it again
        # (same bytes) on every poll until the change is seen.
        def applied() -> bool:
            assert not watcher.done(), watcher
            if "watched" in store.current.by_id:
                return True
            _write(runbook_dir, "watched.yaml", _other("watched"))
            return False

        await _until(applied, "the change to be applied")
        before = store.current
        _write(runbook_dir, "watched.yaml", _other("watched").replace("60s", "later"))
        await _until(lambda: "rejected" in outcomes, "the bad edit to be rejected")
        assert store.current is before
    finally:
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)


async def test_a_configmap_style_symlink_swap_reloads(tmp_path: Path) -> None:
    """Kubernetes updates a ConfigMap volume by re-pointing ``..data``, not by writing files."""
    directory = tmp_path / "mounted"
    directory.mkdir()

    def publish(version: str, files: dict[str, str]) -> None:
        payload = directory / f"..{version}"
        payload.mkdir()
        for name, text in files.items():
            (payload / name).write_text(text)
        (directory / "..data_tmp").symlink_to(payload.name)
        os.replace(directory / "..data_tmp", directory / "..data")
        for name in files:
            link = directory / name
            if not link.is_symlink():
                link.symlink_to(Path("..data") / name)

    publish("v1", {"minimal.yaml": MINIMAL})
    store = RunbookStore(directory, registry=CollectorRegistry())
    store.load_initial()
    stop = asyncio.Event()
    watcher = asyncio.create_task(store.watch(stop, debounce_ms=20))
    try:
        version = 2

        def swapped() -> bool:
            nonlocal version
            assert not watcher.done(), watcher
            runbook = store.current.by_id["minimal"]
            if runbook.escalation.after.total_seconds() == 120:
                return True
            publish(f"v{version}", {"minimal.yaml": MINIMAL.replace("60s", "120s")})
            version += 1
            return False

        await _until(swapped, "the ConfigMap update to be applied")
    finally:
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)
