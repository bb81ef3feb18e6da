"""Session fixtures: the real servers of the local stack, started on free ports for the tests.

Each server starts lazily, the first time a test asks for its fixture, in a temporary
folder of its own, and is stopped when the session ends. Tests that stop or kill a
server (fault injection) need not restart it: the next test that asks for it gets it
running again, with its data intact.

- ``kafka``: a ``responder_dev.stack.kafka.Kafka`` (``.bootstrap``, ``.stop()``, ``.start()``,
  ``.kill()``, ``.create_topics({...})``; ``*_async`` helpers in ``responder_dev.stack.service``).
- ``redis_server`` (``.url``), ``prometheus`` (``.url``, ``.configure(...)``),
  ``alertmanager`` (``.url``, ``.configure(webhook_url=, token=)``, ``.post_alerts``).
- Every async test fails if it leaves asyncio tasks running.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from responder_dev.settings import DevSettings, StackSettings
from responder_dev.stack.alertmanager import Alertmanager
from responder_dev.stack.kafka import Kafka
from responder_dev.stack.process import free_port, free_ports
from responder_dev.stack.prometheus import Prometheus
from responder_dev.stack.redis import Redis
from responder_dev.stack.service import ProcessService

pytest_plugins = ["probe_support"]  # probe_clock, probe_engine: the probe tests' engine

# Fixtures that start a server. A test using ``kafka`` carries the ``kafka`` marker, so
# ``-m "not kafka"`` skips the broker tests.
_SERVER_FIXTURES = ("kafka", "redis_server", "prometheus", "alertmanager")
_SERVER_MARKERS = {"kafka": "kafka"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, marker in _SERVER_MARKERS.items():
            if fixture in names and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    """The stack settings of the environment (cache folder, versions, timeouts); ports unused."""
    return DevSettings().stack


@pytest.fixture(scope="session")
def kafka(
    tmp_path_factory: pytest.TempPathFactory, stack_settings: StackSettings
) -> Iterator[Kafka]:
    """A single-node KRaft broker on free ports, for the whole session."""
    port, controller_port = free_ports(2)
    broker = Kafka(
        tmp_path_factory.mktemp("kafka"),
        port=port,
        controller_port=controller_port,
        cache_dir=Path(stack_settings.cache_dir),
        version=stack_settings.kafka_version,
        heap=stack_settings.kafka_heap,
        start_timeout_s=stack_settings.start_timeout_s,
        stop_timeout_s=stack_settings.stop_timeout_s,
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_server(
    tmp_path_factory: pytest.TempPathFactory, stack_settings: StackSettings
) -> Iterator[Redis]:
    """Redis on a free port (``.url`` is ``redis://127.0.0.1:PORT/0``); tests share it, so
    use keys of your own (or a database number of your own)."""
    server = Redis(
        tmp_path_factory.mktemp("redis"),
        port=free_port(),
        start_timeout_s=stack_settings.start_timeout_s,
        stop_timeout_s=stack_settings.stop_timeout_s,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, stack_settings: StackSettings
) -> Iterator[Prometheus]:
    """Prometheus on a free port (``.url``), scraping only itself, no rules, no Alertmanager,
    1 s scrape interval. Point it at your targets with
    ``prometheus.configure(scrape_targets={"job": ["127.0.0.1:PORT"]}, rule_files=[...])``
    (a live reload); configure it again to undo."""
    server = Prometheus(
        tmp_path_factory.mktemp("prometheus"),
        port=free_port(),
        scrape_targets={},
        alertmanager=None,
        rule_files=[],
        scrape_interval_s=1,
        start_timeout_s=stack_settings.start_timeout_s,
        stop_timeout_s=stack_settings.stop_timeout_s,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, stack_settings: StackSettings
) -> Iterator[Alertmanager]:
    """Alertmanager on a free port (``.url``), group_wait 0 s and group_interval 1 s.

    Route it to your webhook with ``alertmanager.configure(webhook_url=..., token=...)``
    (a live reload through ``/-/reload``); inject alerts with ``post_alerts([...])``. It
    keeps alerts for the whole session: give yours labels no other test uses.
    """
    server = Alertmanager(
        tmp_path_factory.mktemp("alertmanager"),
        port=free_port(),
        # Nothing listens there until a test routes it to its own receiver.
        webhook_url=f"http://127.0.0.1:{free_port()}/v1/alertmanager",
        token="unconfigured",  # a placeholder until a test calls configure()
        group_interval_s=1,
        start_timeout_s=stack_settings.start_timeout_s,
        stop_timeout_s=stack_settings.stop_timeout_s,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _servers_running(request: pytest.FixtureRequest) -> None:
    """Bring back a server an earlier test stopped or killed, before a test that needs it."""
    for name in _SERVER_FIXTURES:
        if name in request.fixturenames:
            server: ProcessService = request.getfixturevalue(name)
            server.start()


@pytest.fixture(autouse=True)
def _no_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """Fail an async test that leaves asyncio tasks behind (they would run into the next test)."""
    if inspect.iscoroutinefunction(getattr(request.node, "obj", None)):
        request.getfixturevalue("_leaked_tasks_guard")


@pytest.fixture
async def _leaked_tasks_guard() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    for _ in range(3):  # let tasks that are finishing their cancellation finish
        await asyncio.sleep(0)
    leaked = [
        task
        for task in asyncio.all_tasks() - before
        if task is not asyncio.current_task() and not task.done()
    ]
    for task in leaked:
        task.cancel()
    if leaked:
        pytest.fail(f"test leaked {len(leaked)} asyncio task(s): {[t.get_coro() for t in leaked]}")


@pytest.fixture
def runbook_dir(tmp_path: Path) -> Path:
    """An empty directory of one's own to write runbooks into."""
    directory = tmp_path / "runbooks"
    directory.mkdir()
    return directory
