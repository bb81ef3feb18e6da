"""``responder probe`` as an operator runs it: the installed command, its settings from the
environment, a local engine on loopback answering what the test chose."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from probe_support import Answer, Engine, FakeMonotonic, serve_engine

RESPONDER = Path(sys.executable).with_name("responder")


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    server = Engine(FakeMonotonic())
    runner = await serve_engine(server)
    try:
        yield server
    finally:
        await runner.cleanup()


async def responder_probe(engine: Engine, *args: str) -> tuple[int, str]:
    """``responder probe ARGS`` with ``drummaroo`` allow-listed as the engine's base URL."""
    env = os.environ | {
        "RESPONDER_ACTIONS__HTTP_BASE_URLS": json.dumps({"drummaroo": engine.url}),
        "KUBECONFIG": "/nonexistent/kubeconfig",  # a pod probe here would have no cluster
    }
    process = await asyncio.create_subprocess_exec(
        str(RESPONDER),
        "--log-format",
        "console",
        "probe",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def test_a_healthy_engine_exits_zero_and_prints_what_was_measured(engine: Engine) -> None:
    engine.answers = [Answer(confidence=0.93)]
    # A generous latency threshold: this checks the exit status, not the machine's speed.
    code, out = await responder_probe(
        engine, "drummaroo", "--complexity", "0.8", "--max-latency-ms", "10000"
    )
    assert code == 0, out
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert lines["verdict"].strip() == "healthy"
    assert lines["success"].strip() == "True"
    assert lines["confidence"].strip() == "0.93"
    assert float(lines["latency_ms"]) > 0
    assert lines["engine"].strip() == "drummaroo"
    (call,) = engine.calls
    assert call["path"] == "/v1/generate/test"
    assert call["body"] == {"complexity": 0.8, "style": "test"}
    assert ipaddress.ip_address(call["local"]).is_loopback


@pytest.mark.parametrize(
    ("answer", "args", "code", "verdict"),
    [
        (Answer(confidence=0.5), ["--max-latency-ms", "10000"], 3, "quality_degraded"),
        (Answer(success=False), [], 1, "failed"),
        (Answer(status=503), [], 1, "failed"),
        # The delay is the point: 600 ms against a 100 ms threshold.
        (Answer(real_delay_s=0.6), ["--max-latency-ms", "100"], 3, "latency_degraded"),
    ],
)
async def test_anything_but_healthy_exits_non_zero(
    engine: Engine, answer: Answer, args: list[str], code: int, verdict: str
) -> None:
    engine.answers = [answer]
    got, out = await responder_probe(engine, "drummaroo", "--json", *args)
    assert got == code, out
    measured = json.loads(out)
    assert measured["verdict"] == verdict
    assert measured["url"].startswith("http://127.0.0.1:")
    if verdict == "latency_degraded":
        assert measured["latency_ms"] >= 590


async def test_an_unknown_name_and_a_crafted_engine_are_refused(engine: Engine) -> None:
    code, out = await responder_probe(engine, "melodyroo")
    assert code == 2
    assert "'melodyroo' is not in actions.http_base_urls" in out
    assert "--namespace" in out
    code, out = await responder_probe(engine, "x;rm -rf /", "--namespace", "musearoo")
    assert code == 2
    assert "RFC 1123" in out
    code, out = await responder_probe(engine, "drummaroo", "--path", "http://evil.example/")
    assert code == 2
    assert "must be a path starting with '/'" in out
    assert engine.calls == []


async def test_a_pod_probe_without_a_cluster_fails_saying_why(engine: Engine) -> None:
    code, out = await responder_probe(engine, "melodyroo", "--namespace", "musearoo")
    assert code == 1, out
    assert "cannot resolve the pods of service musearoo/melodyroo-engine" in out
    assert "no usable Kubernetes configuration" in out
    assert engine.calls == []
