"""Silences: the strict MATCHER parser, and the API v2 client against the real Alertmanager."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.errors import PermanentError, TemporaryError
from responder.integrations.alertmanager.silences import (
    AlertmanagerSilences,
    Matcher,
    MatcherError,
    SilenceRequest,
    parse_matchers,
    silence_ref,
)
from responder_dev.stack.process import free_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alertname=HighGenerationLatency", [("alertname", "=", "HighGenerationLatency")]),
        (
            'alertname=HighGenerationLatency,namespace="musearoo"',
            [("alertname", "=", "HighGenerationLatency"), ("namespace", "=", "musearoo")],
        ),
        ('pod=~"api-.*",env!=dev', [("pod", "=~", "api-.*"), ("env", "!=", "dev")]),
        ('msg="a, b \\"c\\" \\\\"', [("msg", "=", 'a, b "c" \\')]),
        ('_x="",job=api', [("_x", "=", ""), ("job", "=", "api")]),
    ],
)
def test_parses(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(m.name, m.op, m.value) for m in parse_matchers(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no matchers given"),
        ("alertname", "after 'alertname' expected one of =, != or =~"),
        ("alertname==Foo", "after 'alertname' expected one of =, != or =~"),
        ("alertname!~Foo", "after 'alertname' expected one of =, != or =~"),
        ("alert-name=Foo", "after 'alert' expected one of =, != or =~"),
        ("1alert=Foo", "expected a label name at position 1"),
        ("alertname=Foo,", "expected ',' and another matcher at position 14"),
        ("alertname=Foo namespace=x", "expected ',' and another matcher at position 14"),
        ("alertname=", "a value is missing at position 11"),
        ('alertname="Foo', "a quoted value is not closed"),
        ('alertname="F\\oo"', 'only \\" and \\\\ may be escaped in a quoted value'),
        ("pod=~api-(", "pod: bad regular expression"),
        ("a=x,a=y", "a label is matched twice with the same operator"),
        ('a=""', "at least one matcher must not match an empty label"),
        ("a=~.*", "at least one matcher must not match an empty label"),
        ("a={x}", "a value is missing at position 3"),
        ('a="x\ty"', "a quoted value holds a control character"),
        (",".join(f"l{i}=v" for i in range(17)), "more than 16 matchers"),
    ],
)
def test_refuses(text: str, message: str) -> None:
    with pytest.raises(MatcherError) as raised:
        parse_matchers(text)
    assert str(raised.value).startswith(message)


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True),
            st.sampled_from(["=", "!="]),
            st.text(
                alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"])
            ).filter(str.isprintable),
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda t: (t[0], t[1]),
    ).filter(lambda ms: any(op == "=" and value for _, op, value in ms))
)
def test_quoted_round_trip(matchers: list[tuple[str, str, str]]) -> None:
    """Whatever the value, its quoted form parses back to the same matcher."""
    built = [Matcher(name=n, op=op, value=v) for n, op, v in matchers]  # type: ignore[arg-type]
    assert parse_matchers(",".join(str(m) for m in built)) == built


def request_for(alertname: str, ref: str, minutes: int = 30) -> SilenceRequest:
    now = datetime.now(UTC)
    return SilenceRequest(
        matchers=parse_matchers(f"alertname={alertname},pod=~api-.*,env!=dev"),
        starts_at=now,
        ends_at=now + timedelta(minutes=minutes),
        created_by="alice (U0ALICE)",
        comment=f"test [{ref}]",
    )


async def test_create_and_find_on_real_alertmanager(alertmanager: Any) -> None:
    client = AlertmanagerSilences(str(alertmanager.url), timeout_s=5.0)
    ref = silence_ref(uuid.uuid4().hex)
    try:
        assert await client.find(ref) is None
        silence_id = await client.create(request_for(f"T{uuid.uuid4().hex[:8]}", ref))
        assert await client.find(ref) == silence_id
    finally:
        await client.close()


async def test_refused_and_unreachable(alertmanager: Any) -> None:
    client = AlertmanagerSilences(str(alertmanager.url), timeout_s=5.0)
    try:
        with pytest.raises(PermanentError, match="HTTP 400"):
            await client.create(request_for("Past", silence_ref("x"), minutes=-5))
    finally:
        await client.close()
    nobody = AlertmanagerSilences(f"http://127.0.0.1:{free_port()}", timeout_s=2.0)
    try:
        with pytest.raises(TemporaryError, match="unreachable"):
            await nobody.find("ref")
    finally:
        await nobody.close()
