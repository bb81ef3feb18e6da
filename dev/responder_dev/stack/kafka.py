"""Apache Kafka for the local stack: one KRaft node run from Maven Central jars, no tarball.

The jars are resolved once by ``deploy/local/kafka/pom.xml`` into a cache outside git
and shared by every stack and test session; the log dir is formatted on first start
and reused after, so a restart keeps topics and messages (fault-injection tests stop
and start the broker under load). Readiness is a metadata request answered with the
broker listed, not an open port: the port opens before the broker serves.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from responder.errors import ConfigError, TemporaryError
from responder_dev.stack import process
from responder_dev.stack.service import ProcessService, Progress, quiet
from responder_dev.stack.templates import DEPLOY_DIR, render

POM = DEPLOY_DIR / "local" / "kafka" / "pom.xml"
_T = TypeVar("_T")


def jars_dir(cache_dir: Path, version: str) -> Path:
    """Where the jars of Kafka ``version`` live once fetched."""
    return cache_dir.expanduser().resolve() / f"kafka-{version}" / "libs"


def ensure_jars(cache_dir: Path, version: str, progress: Progress = quiet) -> Path:
    """Fetch Kafka ``version`` and a logging backend with Maven, once; return the jar folder.

    Maven copies into a scratch folder that is renamed into place only when complete,
    so an interrupted download is never mistaken for a usable one.
    """
    libs = jars_dir(cache_dir, version)
    if (libs / ".complete").exists():
        return libs
    if shutil.which("mvn") is None:
        raise ConfigError(
            "Maven (mvn) is needed to fetch the Kafka jars: run deploy/local/install.sh"
        )
    scratch = libs.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    progress(f"kafka: downloading org.apache.kafka:kafka_2.13:{version} jars into {libs.parent}")
    began = time.monotonic()
    process.run_checked(
        [
            "mvn",
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={scratch}",
            "-DincludeScope=runtime",
        ],
        cwd=POM.parent,
        what=f"fetching Kafka {version} jars",
        timeout_s=900,
    )
    (scratch / ".complete").write_text(f"{version}\n")
    if (libs / ".complete").exists():  # another process finished first: keep its copy
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        shutil.rmtree(libs, ignore_errors=True)  # an incomplete copy from an older run
        scratch.replace(libs)
    progress(f"kafka: jars ready ({time.monotonic() - began:.1f} s)")
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id as ``StorageTool random-uuid`` makes one, without starting a JVM."""
    while True:
        raw = secrets.token_bytes(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        # Kafka reserves the all-zero and one-valued ids and rejects ids starting with "-".
        if not text.startswith("-") and int.from_bytes(raw, "big") > 1:
            return text


class Kafka(ProcessService):
    """One combined broker + controller on 127.0.0.1."""

    def __init__(
        self,
        home: Path,
        *,
        port: int,
        controller_port: int,
        cache_dir: Path,
        version: str = "4.4.0",
        heap: str = "512m",
        start_timeout_s: float = 120.0,
        stop_timeout_s: float = 20.0,
    ) -> None:
        if port == controller_port:
            raise ConfigError("kafka: the client and controller ports must differ")
        super().__init__(
            "kafka",
            home,
            ports=(port, controller_port),
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )
        self.port = port
        self.controller_port = controller_port
        self.cache_dir = cache_dir
        self.version = version
        self.heap = heap
        self.data_dir = self.home / "data"
        self.config_file = self.home / "server.properties"
        self.log4j_file = self.home / "log4j2.properties"
        self.server_log = self.home / "logs" / "server.log"

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients (aiokafka, Faust's ``kafka://`` URL)."""
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.bootstrap

    @property
    def marker(self) -> str:
        return str(self.config_file)

    def prepare(self, progress: Progress) -> None:
        libs = ensure_jars(self.cache_dir, self.version, progress)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            render(
                "local/kafka/server.properties",
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data_dir,
            )
        )
        self.log4j_file.write_text(
            render("local/kafka/log4j2.properties", log_file=self.server_log)
        )
        if not (self.data_dir / "meta.properties").exists():
            progress(f"kafka: formatting a new KRaft log dir in {self.data_dir}")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            process.run_checked(
                [
                    *self._java(libs, heap="256m"),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    new_cluster_id(),
                    "-c",
                    str(self.config_file),
                ],
                cwd=self.home,
                what="kafka storage format",
                timeout_s=120,
            )

    def command(self) -> list[str]:
        libs = jars_dir(self.cache_dir, self.version)
        return [*self._java(libs, heap=self.heap), "kafka.Kafka", str(self.config_file)]

    def _java(self, libs: Path, *, heap: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigError("kafka needs Java 17 or newer on PATH")
        return [
            java,
            f"-Xmx{heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{libs}/*",
        ]

    def probe(self) -> bool:
        if not process.port_open(self.port):
            return False
        return run_coroutine(lambda: broker_answers(self.bootstrap))

    def create_topics(
        self, topics: Mapping[str, int], *, config: Mapping[str, str] | None = None
    ) -> None:
        """Create topics (name → partitions) on this broker unless they exist."""
        create_topics(self.bootstrap, topics, config=config)

    def log_tail(self, lines: int = 20) -> str:
        # The JVM's stdout holds crashes; the server log holds why Kafka gave up.
        return "\n".join(
            part
            for part in (
                process.tail_file(self.log_file, lines),
                process.tail_file(self.server_log, lines),
            )
            if part
        )


async def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """Whether a metadata request to ``bootstrap`` is answered with at least one broker."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        client_id="stack-probe",
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return bool(client.cluster.brokers())
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()


async def create_topics_async(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Create each topic (name → partitions) unless it exists; return once all have leaders."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="stack-admin")
    await admin.start()
    try:
        for name, partitions in topics.items():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, partitions, 1, topic_configs=dict(config or {}))]
                )
        deadline = time.monotonic() + timeout_s
        while True:
            described = await admin.describe_topics(list(topics))
            ready = {
                entry["topic"]
                for entry in described
                if entry["error_code"] == 0
                and len(entry["partitions"]) == topics[entry["topic"]]
                and all(p["leader"] >= 0 for p in entry["partitions"])
            }
            if ready == set(topics):
                return
            if time.monotonic() >= deadline:
                raise TemporaryError(
                    f"topics without leaders after {timeout_s} s: {set(topics) - ready}"
                )
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def create_topics(
    bootstrap: str, topics: Mapping[str, int], *, config: Mapping[str, str] | None = None
) -> None:
    """Sync ``create_topics_async`` (runs on its own loop in a helper thread)."""
    run_coroutine(lambda: create_topics_async(bootstrap, topics, config=config))


def run_coroutine(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code, even when the caller's thread has a loop."""

    async def main() -> _T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()
