"""Fixtures of the escalation end-to-end test: the local Slack and PagerDuty, and the harness
of ``tests/streams`` (the recording worker, the bus) made importable here."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responder_dev.fakes.http import self_signed_cert
from responder_dev.fakes.pagerduty_events import FakePagerDuty
from responder_dev.fakes.slack_api import FakeSlack

# The remediation tests' harness (recording action worker, Bus) is reused, not copied.
STREAMS_TESTS = Path(__file__).resolve().parents[1] / "streams"
if str(STREAMS_TESTS) not in sys.path:
    sys.path.insert(0, str(STREAMS_TESTS))

from e2e_escalation_support import (  # noqa: E402 - after the path above
    BOT_TOKEN,
    DEFAULT_KEY,
    ONCALL_KEY,
)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(token=BOT_TOKEN)
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
async def fake_pd(tls_cert: tuple[Path, Path]) -> AsyncIterator[FakePagerDuty]:
    pd = FakePagerDuty(cert=tls_cert[0], key=tls_cert[1], routing_keys={DEFAULT_KEY, ONCALL_KEY})
    await pd.start()
    yield pd
    await pd.stop()
