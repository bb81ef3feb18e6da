"""Hot reload of alert definitions: the whole folder or nothing, as with runbooks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from alerting_support import DEFINITION
from prometheus_client import CollectorRegistry

from responder.alerting.store import DefinitionStore
from responder.errors import ConfigError


def _write(directory: Path, name: str, text: str) -> None:
    temporary = directory.parent / f".{name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, directory / name)


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def test_initial_load_refuses_an_invalid_folder(definitions_dir: Path) -> None:
    _write(definitions_dir, "bad.yaml", DEFINITION.replace("for: 1m", "for: a minute"))
    store = DefinitionStore(definitions_dir, registry=CollectorRegistry())
    with pytest.raises(ConfigError, match=r"invalid alert definitions:\n.*bad\.yaml:4:1 for: "):
        store.load_initial()


def test_a_bad_file_keeps_the_old_set(definitions_dir: Path) -> None:
    _write(definitions_dir, "a.yaml", DEFINITION)
    registry = CollectorRegistry()
    store = DefinitionStore(definitions_dir, registry=registry, clock=lambda: 99.0)
    old = store.load_initial()
    assert sorted(old.by_name) == ["minimal_latency"]
    assert _sample(registry, "responder_alert_definitions_loaded") == 1
    # A valid new definition and a broken edit of the old one: none of it becomes active.
    _write(definitions_dir, "b.yaml", DEFINITION.replace("name: minimal_latency", "name: other"))
    _write(definitions_dir, "a.yaml", DEFINITION.replace("severity: warning", "severity: loud"))
    outcome = store.reload()
    assert outcome.status == "rejected"
    assert [str(e) for e in outcome.errors] == [
        f"{definitions_dir}/a.yaml:6:1 severity: must be 'critical', 'warning' or 'info'"
    ]
    assert store.current is old
    assert _sample(registry, "responder_alert_definition_reloads_total", outcome="rejected") == 1
    assert _sample(registry, "responder_alert_definition_load_errors_total") == 1
    # Fixed: both become active at once.
    _write(definitions_dir, "a.yaml", DEFINITION)
    assert store.reload().status == "applied"
    assert sorted(store.current.by_name) == ["minimal_latency", "other"]
    assert store.reload().status == "unchanged"


async def test_a_file_change_reloads_while_the_loop_runs(definitions_dir: Path) -> None:
    _write(definitions_dir, "a.yaml", DEFINITION)
    store = DefinitionStore(definitions_dir, registry=CollectorRegistry())
    store.load_initial()
    stop = asyncio.Event()
    outcomes: list[str] = []
    watcher = asyncio.create_task(
        store.watch(stop, debounce_ms=50, on_reload=lambda o: outcomes.append(o.status))
    )
    try:
        # The watcher may not be watching yet when the file lands: write it again (with new
        # bytes, so it is a change) until the reload has picked it up, within a deadline.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        attempt = 0
        while "b" not in store.current.by_name and loop.time() < deadline:
            assert not watcher.done(), watcher
            attempt += 1
            text = DEFINITION.replace("name: minimal_latency", "name: b")
            _write(definitions_dir, "b.yaml", f"{text}# write {attempt}\n")
            for _ in range(10):  # up to 0.5 s for this write to be reloaded
                if "b" in store.current.by_name:
                    break
                await asyncio.sleep(0.05)
        assert sorted(store.current.by_name) == ["b", "minimal_latency"], outcomes
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 10)
