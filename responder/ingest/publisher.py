"""Getting what ingest accepted onto Kafka, or saying clearly that we could not.

One :class:`KafkaPublisher` per topic ingest writes: alerts, and (with ChatOps) commands and
inbound audit records. Ingest answers 200 only once the broker has acknowledged every
record of the request, so this wrapper's one promise is: :meth:`KafkaPublisher.publish` returns only
after all acks, and otherwise raises :class:`~responder.errors.TemporaryError` within its
timeout (Alertmanager retries on the 503 that follows). Producing is idempotent with
``acks=all``; the number of alerts in flight is bounded, so a slow broker sheds load instead
of growing memory. An alert that timed out may still reach the topic later: the retry then
duplicates it, and triage's dedup makes that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from responder.errors import TemporaryError
from responder.kafka_admin import ensure_topics
from responder.settings import KafkaSettings

log = structlog.get_logger(__name__)

Message = tuple[bytes, bytes]
"""A Kafka key and value."""


class AlertPublisher(Protocol):
    """What the HTTP handler needs from the broker side (a Protocol so tests can see it whole)."""

    async def publish(self, messages: Sequence[Message]) -> None:
        """Return once every message is acknowledged; raise TemporaryError otherwise."""

    async def ready(self) -> bool:
        """Whether the broker answers now."""


class KafkaPublisher:
    """An idempotent aiokafka producer behind a bound and a deadline.

    :meth:`start` never fails because the broker is down: it keeps connecting in the
    background while :meth:`publish` answers with TemporaryError, so ingest can come up
    before Kafka and report itself unready instead of crashing.
    """

    def __init__(self, settings: KafkaSettings, topic: str, *, retry_after_s: float) -> None:
        self._settings = settings
        self._topic = topic
        self._retry_after_s = retry_after_s
        self._timeout_s = settings.request_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._pending = 0

    @property
    def pending(self) -> int:
        """Alerts handed to the producer and not yet acknowledged or failed."""
        return self._pending

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect(), name="kafka-producer-connect")

    async def stop(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until the producer is connected (start-up of the CLI and tests)."""
        if self._connector is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._connector), timeout_s)
        return self._producer is not None

    async def _connect(self) -> None:
        delay = 0.2
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.bootstrap,
                client_id="responder-ingest",
                enable_idempotence=True,  # forces acks=all: an ack means the record is durable
                acks="all",
                request_timeout_ms=int(self._timeout_s * 1000),
                linger_ms=2,
                max_batch_size=256 * 1024,
            )
            try:
                await producer.start()
                await ensure_topics(self._settings, [self._topic])
            except asyncio.CancelledError:
                await producer.stop()  # stopped while connecting: leave no client open
                raise
            except (KafkaError, OSError) as exc:
                await producer.stop()
                log.warning("kafka.connect_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)  # back-off between connection attempts
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            log.info("kafka.connected", bootstrap=self._settings.bootstrap, topic=self._topic)
            return

    async def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return  # a webhook may carry no alerts (truncated); nothing to acknowledge
        producer = self._producer
        if producer is None:
            raise TemporaryError("Kafka is not connected", delay=self._retry_after_s)
        if self._pending + len(messages) > self._settings.max_pending:
            raise TemporaryError(
                f"{self._pending} alerts already in flight to Kafka", delay=self._retry_after_s
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        self._pending += len(messages)
        futures: list[asyncio.Future[object]] = []
        try:
            async with asyncio.timeout_at(deadline):
                for key, value in messages:
                    future = await producer.send(self._topic, value=value, key=key)
                    future.add_done_callback(self._settle)
                    futures.append(future)
            # asyncio.wait, not gather: a timeout must not cancel futures the producer still owns,
            # or the in-flight count would drop before the producer lets go of the record.
            done, not_done = await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
        except TimeoutError as exc:
            raise TemporaryError(
                "Kafka did not accept the alerts in time", delay=self._retry_after_s
            ) from exc
        except KafkaError as exc:
            raise TemporaryError(
                f"Kafka refused the alerts: {exc}", delay=self._retry_after_s
            ) from exc
        finally:
            self._pending -= len(messages) - len(futures)  # never handed to the producer
        if not_done:
            raise TemporaryError(
                f"Kafka acknowledged {len(done)} of {len(futures)} alerts in time",
                delay=self._retry_after_s,
            )
        for future in done:
            if (error := future.exception()) is not None:
                raise TemporaryError(
                    f"Kafka refused an alert: {error}", delay=self._retry_after_s
                ) from error

    def _settle(self, future: asyncio.Future[object]) -> None:
        self._pending -= 1
        if not future.cancelled():
            future.exception()  # retrieved here so a late failure is not logged as unhandled

    async def ready(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        try:
            async with asyncio.timeout(min(self._timeout_s, 2.0)):
                await producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError, OSError):
            return False
        return True
