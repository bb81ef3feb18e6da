"""The command model's validation and the small stages (seen cache, backoff, limiter keys)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from integrations_support import INCIDENT_ID, FakeClock
from pydantic import ValidationError

from responder.integrations.seen import SeenCache
from responder.models.commands import Actor, Command, CommandKind, CommandSource
from responder.models.matchers import Matcher
from responder.retry import full_jitter_delay, is_retryable_status

BASE = {
    "idempotency_key": "k",
    "actor": Actor(id="U1"),
    "source": CommandSource.CLI,
    "issued_at": datetime(2026, 11, 30, tzinfo=UTC),
}


def test_incident_commands_need_a_valid_incident_id() -> None:
    assert Command(kind=CommandKind.ACK, incident_id=INCIDENT_ID, **BASE).incident_id == INCIDENT_ID
    for bad in (None, "", "../x", "a b", "x" * 65, "inc;rm", "inc/1"):
        with pytest.raises(ValidationError):
            Command(kind=CommandKind.ACK, incident_id=bad, **BASE)


def test_run_and_silence_fields_are_checked() -> None:
    run = Command(
        kind=CommandKind.RUN,
        action="deployment.scale",
        target="prod/api",
        params={"factor": "2"},
        **BASE,
    )
    assert run.apply is False
    with pytest.raises(ValidationError):
        Command(kind=CommandKind.RUN, action="deployment.scale", **BASE)
    with pytest.raises(ValidationError):
        Command(kind=CommandKind.RUN, action="Deployment.Scale", target="prod/api", **BASE)
    with pytest.raises(ValidationError):
        Command(
            kind=CommandKind.RUN,
            action="deployment.scale",
            target="prod/api",
            params={"x": "a b"},
            **BASE,
        )
    with pytest.raises(ValidationError):
        Command(
            kind=CommandKind.SILENCE,
            matchers=[Matcher(name="alertname", value="X")],
            duration_s=8 * 86400,
            **BASE,
        )
    with pytest.raises(ValidationError, match="empty label"):
        Command(
            kind=CommandKind.SILENCE,
            matchers=[Matcher(name="alertname", op="=~", value=".*")],
            duration_s=3600,
            **BASE,
        )
    with pytest.raises(ValidationError):
        Command(kind=CommandKind.ACK, incident_id=INCIDENT_ID, surprise=1, **BASE)


def test_command_round_trips_as_json() -> None:
    command = Command(kind=CommandKind.APPROVE, incident_id=INCIDENT_ID, step=3, **BASE)
    assert Command.model_validate_json(command.model_dump_json()) == command


def test_seen_cache_expires_and_stays_bounded() -> None:
    clock = FakeClock()
    seen = SeenCache(ttl_s=10, max_entries=3, clock=clock)
    seen.add("a")
    clock.advance(5)
    seen.add("b")
    assert "a" in seen
    clock.advance(6)
    assert "a" not in seen
    assert "b" in seen
    for key in "cdef":
        seen.add(key)
    assert len(seen) == 3
    assert "b" not in seen


def test_backoff_and_classifier() -> None:
    assert [full_jitter_delay(a, base_s=1, cap_s=8, rand=lambda: 1.0) for a in range(5)] == [
        1,
        2,
        4,
        8,
        8,
    ]
    assert full_jitter_delay(3, base_s=1, cap_s=8, rand=lambda: 0.25) == 2
    assert [is_retryable_status(s) for s in (400, 401, 404, 429, 500, 503)] == [
        False,
        False,
        False,
        True,
        True,
        True,
    ]
