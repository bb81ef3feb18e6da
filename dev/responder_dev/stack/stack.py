"""The whole local stack: which servers it has, in which order they start, and where they live.

``SERVICES`` is the one registry: each entry names a server and builds it from the
settings. The CLI (``responder stack up|down|status``) and the demo go through
``Stack``; tests build single services on free ports instead (``tests/conftest.py``).
Adding a server is one entry here; ``--no-<name>`` style opt-outs work by name.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from responder.errors import ConfigError, PermanentError, ResponderError
from responder.settings import Settings
from responder_dev.settings import DevSettings
from responder_dev.stack.service import Progress, Service, ServiceStatus, quiet

# Each factory imports its server's module when it builds one: reading the registry (the
# CLI lists the names at start-up) does not load aiokafka, the kube plumbing and the rest.

ServiceFactory = Callable[[DevSettings, Path], Service]
"""Builds a service from the settings and the stack's root folder."""


@dataclass(frozen=True)
class ServiceSpec:
    """One entry of the registry."""

    name: str
    factory: ServiceFactory
    description: str


def ingest_address(settings: Settings) -> str:
    """``host:port`` of the ingest service as reached from this machine."""
    host = settings.ingest.host
    if host in {"0.0.0.0", "", "::"}:  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1"
    return f"{host}:{settings.ingest.port}"


def ingest_webhook_url(settings: Settings) -> str:
    """Where Alertmanager delivers: the ingest service's ``/v1/alertmanager``."""
    return f"http://{ingest_address(settings)}/v1/alertmanager"


def webhook_token(settings: Settings, root: Path) -> str:
    """The bearer token Alertmanager sends: ``RESPONDER_INGEST__BEARER_TOKEN`` if set, else
    one generated once and kept in ``<root>/webhook-token`` (give it to ingest the same way)."""
    if settings.ingest.bearer_token is not None:
        return settings.ingest.bearer_token.get_secret_value()
    path = root / "webhook-token"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


class _Timeouts(TypedDict):
    start_timeout_s: float
    stop_timeout_s: float


def _timeouts(settings: DevSettings) -> _Timeouts:
    """Every server waits as long as ``settings.stack`` says to start and to stop."""
    return {
        "start_timeout_s": settings.stack.start_timeout_s,
        "stop_timeout_s": settings.stack.stop_timeout_s,
    }


def _kafka(settings: DevSettings, root: Path) -> Service:
    from responder_dev.stack.kafka import Kafka

    s = settings.stack
    return Kafka(
        root / "kafka",
        port=s.kafka_port,
        controller_port=s.kafka_controller_port,
        cache_dir=Path(s.cache_dir),
        version=s.kafka_version,
        heap=s.kafka_heap,
        **_timeouts(settings),
    )


def _redis(settings: DevSettings, root: Path) -> Service:
    from responder_dev.stack.redis import Redis

    return Redis(root / "redis", port=settings.stack.redis_port, **_timeouts(settings))


def _alertmanager(settings: DevSettings, root: Path) -> Service:
    from responder_dev.stack.alertmanager import Alertmanager

    s = settings.stack
    return Alertmanager(
        root / "alertmanager",
        port=s.alertmanager_port,
        webhook_url=ingest_webhook_url(settings),
        token=webhook_token(settings, root),
        group_interval_s=s.alertmanager_group_interval_s,
        **_timeouts(settings),
    )


def _prometheus(settings: DevSettings, root: Path) -> Service:
    from responder_dev.stack.prometheus import INGEST_JOB, Prometheus

    s = settings.stack
    return Prometheus(
        root / "prometheus",
        port=s.prometheus_port,
        scrape_targets={INGEST_JOB: [ingest_address(settings)]},
        alertmanager=f"127.0.0.1:{s.alertmanager_port}",
        scrape_interval_s=s.prometheus_scrape_interval_s,
        **_timeouts(settings),
    )


def _kube(settings: DevSettings, root: Path) -> Service:
    from responder_dev.stack.kube import kube_service

    return kube_service(settings, root)


# Start order: Kafka first (slowest, and what the responder cannot run without), Alertmanager
# before Prometheus (which sends it alerts). `responder stack down` stops in reverse.
SERVICES: list[ServiceSpec] = [
    ServiceSpec("kafka", _kafka, "Apache Kafka, one KRaft node"),
    ServiceSpec("redis", _redis, "Redis (the cache actions clear)"),
    ServiceSpec("alertmanager", _alertmanager, "Alertmanager, routing to the ingest webhook"),
    ServiceSpec("prometheus", _prometheus, "Prometheus, scraping ingest /metrics"),
    ServiceSpec(
        "kube", _kube, "Kubernetes control plane: etcd, apiserver, controllers, kwok nodes"
    ),
]


class Stack:
    """Servers started in order and stopped in reverse."""

    def __init__(self, services: Sequence[Service]) -> None:
        names = [service.name for service in services]
        if len(set(names)) != len(names):
            raise ConfigError(f"stack: duplicate service names in {names}")
        self.services = tuple(services)

    @classmethod
    def from_settings(
        cls, settings: DevSettings, *, skip: Collection[str] = (), root: Path | None = None
    ) -> Stack:
        """The registry's services, less those named in ``skip``, under ``root`` (default:
        ``settings.stack.root_dir``)."""
        unknown = set(skip) - {spec.name for spec in SERVICES}
        if unknown:
            raise ConfigError(f"stack: no such service(s) {sorted(unknown)}")
        home = (root or Path(settings.stack.root_dir)).resolve()
        return cls([spec.factory(settings, home) for spec in SERVICES if spec.name not in skip])

    def get(self, name: str) -> Service:
        """The service called ``name``."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def up(self, progress: Progress = quiet) -> None:
        """Start every service in order (reusing running ones); stop at the first failure,
        leaving those already started running (a second ``up`` reuses them)."""
        for service in self.services:
            service.start(progress)

    def down(self, progress: Progress = quiet) -> None:
        """Stop every service in reverse order; try them all, then report what failed."""
        failures: list[str] = []
        for service in reversed(self.services):
            try:
                service.stop()
                progress(f"{service.name}: stopped")
            except ResponderError as exc:
                failures.append(f"{service.name}: {exc}")
        if failures:
            raise PermanentError("stack: some services did not stop:\n" + "\n".join(failures))

    def status(self) -> list[ServiceStatus]:
        """Each service's state, in start order."""
        return [service.status() for service in self.services]

    async def up_async(self, progress: Progress = quiet) -> None:
        """``up`` without blocking the event loop."""
        await asyncio.to_thread(self.up, progress)

    async def down_async(self, progress: Progress = quiet) -> None:
        """``down`` without blocking the event loop."""
        await asyncio.to_thread(self.down, progress)

    async def status_async(self) -> list[ServiceStatus]:
        """``status`` without blocking the event loop."""
        return await asyncio.to_thread(self.status)
