"""The worker keeps the log level asked for: no record is built for a debug call it drops.

Faust's terminal spinner sets the root logger to DEBUG when the worker's level is WARN or
above; every debug call of Faust and aiokafka (several per message) then builds a record
that the handler drops. ``faust_worker`` runs without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder.settings import KafkaSettings, RemediationSettings, Settings, WorkerSettings
from streams.app import create_streams, faust_worker


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Logging as it was before the worker set it up, restored afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("loglevel", ["warning", "error", "info"])
def test_the_worker_does_not_lower_the_root_log_level(
    loglevel: str, tmp_path: Path, root_logging: None
) -> None:
    (tmp_path / "runbooks").mkdir()
    settings = Settings(
        kafka=KafkaSettings(bootstrap="127.0.0.1:9", topic_prefix="logging-test"),
        worker=WorkerSettings(store="memory://", web_enabled=False),
        remediation=RemediationSettings(runbooks_dir=str(tmp_path / "runbooks")),
    )
    worker = faust_worker(create_streams(settings), loglevel)

    worker._setup_logging()  # what the worker does first when it starts

    assert logging.getLogger().level == logging.getLevelName(loglevel.upper())
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
