"""A MuseAroo engine simulator: the service the demo breaks and the responder heals.

Each engine listens on its own loopback port and serves what a real engine serves to the
responder's side of the world: its Prometheus metrics (``/metrics``, the design's names)
and the test generation the generation probe calls (``POST /v1/generate/test``, the
shape in ``PROBE_PATH``'s docstring). How unwell an engine is follows real state read
from the real servers, so only the responder's real change clears a fault:

- **cache fault**: generation latency is high while poisoned keys
  ``generation:<engine>:poisoned:*`` exist in Redis; ``cache.clear`` deleting them is
  the fix (the simulator only reads Redis; the demo writes the keys).
- **stuck-model fault**: the probe's confidence (and the health score) stays below 0.7
  while any pod that ran when the fault began still runs in the apiserver; a rollout
  restart replacing the Deployment's pods is the fix.
- **hard fault**: generation fails outright until a person clears it
  (``DELETE /v1/faults/hard``): nothing a runbook does helps, so the incident escalates.

Faults are injected on ``POST /v1/faults/{stuck_model,hard}``; ``GET /v1/faults`` says
what the simulator currently sees. Run it as ``python -m responder_dev.demo.simulator``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = structlog.get_logger(__name__)

PROBE_PATH = "/v1/generate/test"
"""The generation probe's contract: ``POST`` with ``{"complexity": 0.5, "style": "test"}``
answers 200 ``{"success": bool, "confidence": 0..1, "engine": name, "duration_ms": float}``;
the caller times the call itself."""
HEALTHY_CONFIDENCE = 0.92
STUCK_CONFIDENCE = 0.42
"""Below the design's 0.7 quality threshold."""
HEALTHY_LATENCY_S = 0.06
POISONED_LATENCY_S = 0.45
"""Above the design's 200 ms p95 threshold."""
HARD_LATENCY_S = 0.03
"""A hard-failed engine fails fast: errors, not latency, tell of it."""
TRAFFIC_PER_S = 20.0
"""Generations each engine serves per second, observed into the latency histogram."""
LATENCY_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


def poison_prefix(engine: str) -> str:
    """Redis keys under this prefix make ``engine`` slow (they match ``generation:*``)."""
    return f"generation:{engine}:poisoned:"


def deployment_name(engine: str) -> str:
    return f"{engine}-engine"


@dataclass
class Seen:
    """What the simulator last read from the real servers for one engine."""

    poisoned_keys: bool = False
    stuck_pods: frozenset[str] = frozenset()
    """Pods that ran when the stuck-model fault began and still run (empty: not stuck)."""
    pods: tuple[str, ...] = ()
    hard: bool = False
    read_error: str = ""

    @property
    def stuck(self) -> bool:
        return bool(self.stuck_pods)


@dataclass
class EngineMetrics:
    """The design's metrics for one engine, in a registry of its own (one /metrics each)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        labels = ("namespace", "engine")
        r = self.registry
        self.latency = Histogram(
            "musearoo_generation_latency_seconds",
            "Wall time of one generation.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.health = Gauge(
            "musearoo_engine_health_score", "Self-reported health, 0..1.", labels, registry=r
        )
        self.websocket = Histogram(
            "musearoo_websocket_message_latency_seconds",
            "Latency of one WebSocket message.",
            labels,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
            registry=r,
        )
        self.errors = Counter(
            "musearoo_session_errors", "Failed generations in sessions.", labels, registry=r
        )
        self.satisfaction = Counter(
            "musearoo_user_satisfaction",
            "User ratings of generations.",
            (*labels, "rating"),
            registry=r,
        )
        self.sessions = Gauge(
            "musearoo_active_sessions", "Creative sessions open now.", labels, registry=r
        )


class Engine:
    """One simulated engine: its state as read from the world, its metrics, its HTTP app."""

    def __init__(self, name: str, namespace: str, port: int) -> None:
        self.name, self.namespace, self.port = name, namespace, port
        self.seen = Seen()
        self.metrics = EngineMetrics()
        self.stuck_since: frozenset[str] | None = None
        """The pods running when the stuck-model fault was injected; None: no such fault."""
        self.hard = False
        self._random = random.Random(name)  # noqa: S311 - simulated noise, not security

    # --- how unwell it is -------------------------------------------------------------------

    def latency_s(self) -> float:
        if self.seen.hard:
            base = HARD_LATENCY_S
        elif self.seen.poisoned_keys:
            base = POISONED_LATENCY_S
        else:
            base = HEALTHY_LATENCY_S
        return max(0.005, self._random.gauss(base, base * 0.1))

    def confidence(self) -> float:
        if self.seen.hard:
            return 0.1
        return STUCK_CONFIDENCE if self.seen.stuck else HEALTHY_CONFIDENCE

    def probe(self) -> dict[str, Any]:
        """One test generation's answer (the probe contract's body)."""
        return {
            "success": not self.seen.hard,
            "confidence": round(self.confidence(), 3),
            "engine": self.name,
        }

    def serve_traffic(self, seconds: float) -> None:
        """Observe ``seconds`` worth of user traffic into the metrics."""
        m, labels = self.metrics, (self.namespace, self.name)
        count = max(1, round(TRAFFIC_PER_S * seconds))
        errors = m.errors.labels(*labels)  # the series exists at 0 before the first error
        for rating in ("positive", "negative"):
            m.satisfaction.labels(*labels, rating)
        for _ in range(count):
            m.latency.labels(*labels).observe(self.latency_s())
            ws = 0.012
            m.websocket.labels(*labels).observe(max(0.001, self._random.gauss(ws, ws * 0.1)))
            if self.seen.hard:
                errors.inc()
            rating = "positive" if self.confidence() >= 0.7 else "negative"
            m.satisfaction.labels(*labels, rating).inc()
        m.health.labels(*labels).set(self.confidence())
        m.sessions.labels(*labels).set(0 if self.seen.hard else 12)

    # --- HTTP -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post(PROBE_PATH, self._generate_test)
        app.router.add_get("/v1/faults", self._faults)
        app.router.add_post("/v1/faults/{kind}", self._inject)
        app.router.add_delete("/v1/faults/{kind}", self._clear)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"engine": self.name, "ok": True})

    async def _generate_test(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": "body: not JSON"}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("complexity"), int | float):
            return web.json_response({"error": "complexity: a number is required"}, status=400)
        started = time.monotonic()
        latency = self.latency_s()
        await asyncio.sleep(latency)  # the generation takes this long
        self.metrics.latency.labels(self.namespace, self.name).observe(latency)
        answer = self.probe() | {"duration_ms": round((time.monotonic() - started) * 1000, 1)}
        return web.json_response(answer)

    async def _faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.describe())

    def describe(self) -> dict[str, Any]:
        seen = self.seen
        return {
            "engine": self.name,
            "poisoned_keys": seen.poisoned_keys,
            "stuck_model": seen.stuck,
            "stuck_pods": sorted(seen.stuck_pods),
            "pods": list(seen.pods),
            "hard": seen.hard,
            "read_error": seen.read_error,
            "confidence": round(self.confidence(), 3),
        }

    async def _inject(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind == "hard":
            self.hard = self.seen.hard = True
        elif kind == "stuck_model":
            if not self.seen.pods:
                return web.json_response(
                    {"error": f"stuck_model: no running pods of {deployment_name(self.name)} seen"},
                    status=409,
                )
            self.stuck_since = frozenset(self.seen.pods)
            self.seen.stuck_pods = self.stuck_since
        else:
            return web.json_response({"error": f"kind: no fault {kind!r}"}, status=404)
        log.info("simulator.fault_injected", engine=self.name, kind=kind)
        return web.json_response(self.describe())

    async def _clear(self, request: web.Request) -> web.Response:
        if request.match_info["kind"] != "hard":
            return web.json_response(
                {"error": "kind: only the hard fault is cleared by hand"}, status=404
            )
        self.hard = False
        self.seen.hard = False
        log.info("simulator.fault_cleared", engine=self.name, kind="hard")
        return web.json_response(self.describe())


class World:
    """Reads what the faults depend on from the real Redis and the real apiserver."""

    def __init__(self, redis_url: str, kubeconfig: Path | None) -> None:
        self.redis_url = redis_url
        self.kubeconfig = kubeconfig
        self._redis: Any = None
        self._kube: Any = None

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(self.redis_url, socket_timeout=2)
        if self.kubeconfig is not None:
            from kubernetes_asyncio.config import new_client_from_config

            self._kube = await new_client_from_config(config_file=str(self.kubeconfig))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if self._kube is not None:
            await self._kube.close()

    async def poisoned(self, engine: str) -> bool:
        async for _ in self._redis.scan_iter(match=poison_prefix(engine) + "*", count=1000):
            return True
        return False

    async def running_pods(self, namespace: str, engine: str) -> tuple[str, ...]:
        """Names of the Deployment's pods (by its own selector) that run and are not being
        deleted."""
        if self._kube is None:
            return ()
        from kubernetes_asyncio import client

        deployment = await client.AppsV1Api(self._kube).read_namespaced_deployment(
            deployment_name(engine), namespace, _request_timeout=5
        )
        selector = ",".join(
            f"{k}={v}" for k, v in sorted(deployment.spec.selector.match_labels.items())
        )
        pods = await client.CoreV1Api(self._kube).list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=5
        )
        return tuple(
            sorted(
                p.metadata.name
                for p in pods.items
                if p.metadata.deletion_timestamp is None and (p.status.phase == "Running")
            )
        )

    async def refresh(self, engine: Engine) -> None:
        try:
            poisoned = await self.poisoned(engine.name)
            pods = await self.running_pods(engine.namespace, engine.name)
        except Exception as exc:  # noqa: BLE001 - a failed read keeps what was seen last
            engine.seen.read_error = repr(exc)[:200]
            log.warning("simulator.read_failed", engine=engine.name, error=repr(exc))
            return
        stuck: frozenset[str] = frozenset()
        if engine.stuck_since is not None:
            stuck = engine.stuck_since & frozenset(pods)
            if not stuck and pods:
                log.info("simulator.pods_replaced", engine=engine.name, pods=pods)
                engine.stuck_since = None  # the models were reloaded with the pods
            elif not pods:
                stuck = engine.stuck_since  # no pod runs: nothing served fresh models yet
        engine.seen = Seen(poisoned_keys=poisoned, stuck_pods=stuck, pods=pods, hard=engine.hard)


class Simulator:
    """Every engine's app on its own port, one loop refreshing state and serving traffic."""

    def __init__(
        self,
        engines: Iterable[tuple[str, int]],
        *,
        namespace: str,
        redis_url: str,
        kubeconfig: Path | None,
        tick_s: float = 0.25,
    ) -> None:
        self.engines = {name: Engine(name, namespace, port) for name, port in engines}
        self.world = World(redis_url, kubeconfig)
        self.tick_s = tick_s
        self._runners: list[web.AppRunner] = []
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.world.start()
        for engine in self.engines.values():
            await self.world.refresh(engine)
            engine.serve_traffic(self.tick_s)  # every series exists from the first scrape
            runner = web.AppRunner(engine.app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", engine.port).start()
            engine.port = runner.addresses[0][1]  # a port of 0 is chosen by the kernel
            self._runners.append(runner)
        self._loop = asyncio.create_task(self._run())

    def url(self, engine: str) -> str:
        return f"http://127.0.0.1:{self.engines[engine].port}"

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            await asyncio.gather(*(self.world.refresh(e) for e in self.engines.values()))
            for engine in self.engines.values():
                engine.serve_traffic(now - last)
            last = now

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for runner in self._runners:
            await runner.cleanup()
        await self.world.close()


# --- the client side: the demo and the tests call an engine as the responder would ----------


async def call_probe(session: Any, base: str) -> tuple[dict[str, Any], float]:
    """One call of the probe contract on ``base`` (an aiohttp session): the JSON answer and
    the wall time the call took, in seconds, as the caller measures it."""
    started = time.monotonic()
    async with session.post(base + PROBE_PATH, json={"complexity": 0.5, "style": "test"}) as r:
        r.raise_for_status()
        body: dict[str, Any] = await r.json()
    return body, time.monotonic() - started


async def read_faults(session: Any, base: str) -> dict[str, Any]:
    """What the engine at ``base`` currently sees (``GET /v1/faults``)."""
    async with session.get(base + "/v1/faults") as r:
        r.raise_for_status()
        seen: dict[str, Any] = await r.json()
    return seen


def parse_engines(values: Sequence[str]) -> list[tuple[str, int]]:
    """``name=port`` pairs; an engine name must be a DNS label (it names a Deployment)."""
    from responder.models.target import check_dns_label

    engines = []
    for value in values:
        name, sep, port = value.partition("=")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise click.BadParameter(f"{value!r}: expected name=port", param_hint="--engine")
        try:
            engines.append((check_dns_label(name, what="engine"), int(port)))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--engine") from exc
    return engines


@click.command()
@click.option("--engine", "engines", multiple=True, required=True, help="name=port, repeated.")
@click.option("--namespace", default="musearoo", show_default=True)
@click.option("--redis-url", required=True, help="The Redis whose poisoned keys slow engines.")
@click.option("--kubeconfig", type=click.Path(exists=True, path_type=Path), default=None)
def main(engines: tuple[str, ...], namespace: str, redis_url: str, kubeconfig: Path | None) -> None:
    """Serve simulated MuseAroo engines on loopback until SIGTERM."""
    from responder.logging import configure

    configure(json=False, level="INFO")

    async def serve() -> None:
        simulator = Simulator(
            parse_engines(engines), namespace=namespace, redis_url=redis_url, kubeconfig=kubeconfig
        )
        await simulator.start()
        for name in simulator.engines:
            log.info("simulator.serving", engine=name, url=simulator.url(name))
        try:
            await asyncio.Event().wait()
        finally:
            await simulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
