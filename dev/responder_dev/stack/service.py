"""One interface for every local server, and the base class that runs one as a plain process.

``responder stack``, the demo and the pytest fixtures all drive servers through the
``Service`` protocol, so adding one (the kube-apiserver) is a class and a line in
``responder_dev.stack.stack.SERVICES``, with nothing to change in its callers.

The calls block (subprocesses, sockets, polling with a deadline): sync callers use
them as they are; async code uses the ``*_async`` helpers below, which move them to
a thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import fcntl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import structlog

from responder.errors import ConfigError, PermanentError, TemporaryError
from responder_dev.stack import process
from responder_dev.stack.templates import replace_config

Progress = Callable[[str], None]
"""Receives one human sentence per step of a start (downloading, formatting, waiting)."""

_log = structlog.get_logger(__name__)


def quiet(message: str) -> None:
    """A ``Progress`` that logs at debug level instead of printing."""
    _log.debug("stack.progress", message=message)


class State(StrEnum):
    """What ``status()`` found."""

    READY = "ready"  # running and answering its readiness probe
    UNREADY = "unready"  # the process runs but does not answer (starting, or wedged)
    STOPPED = "stopped"


@dataclass(frozen=True)
class ServiceStatus:
    """One server's state, as ``responder stack status`` prints it."""

    name: str
    state: State
    pid: int | None
    endpoint: str
    log_file: Path


@runtime_checkable
class Service(Protocol):
    """A server of the local stack."""

    @property
    def name(self) -> str:
        """Short unique name (``kafka``, ``redis``, ...), used by ``--no-<name>`` style opt-outs."""
        ...

    @property
    def endpoint(self) -> str:
        """Where clients reach it: ``127.0.0.1:9092``, ``redis://...``, ``http://...``."""
        ...

    def start(self, progress: Progress = quiet) -> None:
        """Start it, or reuse the running instance; return once it answers."""
        ...

    def wait_ready(self, deadline: float) -> None:
        """Poll until it answers, or raise once ``deadline`` (``time.monotonic()``) passes."""
        ...

    def stop(self) -> None:
        """Stop it cleanly (SIGTERM, then SIGKILL after the stop timeout); no-op when stopped."""
        ...

    def status(self) -> ServiceStatus:
        """Whether it runs and answers."""
        ...


class ProcessService(ABC):
    """A server run as one child process with a config folder, a pid file and a log file.

    Subclasses say how to prepare its files (``prepare``), how to run it (``command``)
    and how to tell that it answers (``probe``); this class makes start idempotent,
    waits with a deadline, and stops it.
    """

    def __init__(
        self,
        name: str,
        home: Path,
        *,
        ports: Sequence[int],
        start_timeout_s: float,
        stop_timeout_s: float,
    ) -> None:
        self._name = name
        self.home = home.resolve()
        self.ports = tuple(ports)
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.pid_file = self.home / f"{name}.pid"
        self.log_file = self.home / "logs" / f"{name}.out"

    @property
    def name(self) -> str:
        return self._name

    @property
    @abstractmethod
    def endpoint(self) -> str: ...

    @property
    @abstractmethod
    def marker(self) -> str:
        """A string on the server's command line that only this instance has (its config path)."""

    @abstractmethod
    def prepare(self, progress: Progress) -> None:
        """Write config, create folders, fetch or format what a first start needs."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""

    @abstractmethod
    def probe(self) -> bool:
        """One readiness check (a real protocol request); False when it does not answer yet."""

    def env(self) -> dict[str, str] | None:
        """Environment for the server process (None: inherit ours)."""
        return None

    def pid(self) -> int | None:
        """The pid of our running instance, if any."""
        return process.read_pid(self.pid_file, self.marker)

    def start(self, progress: Progress = quiet) -> None:
        with self._lock():
            pid = self.pid()
            if pid is not None:
                progress(f"{self.name}: already running (pid {pid}), reusing it")
                self.wait_ready(time.monotonic() + self.start_timeout_s)
                return
            busy = [port for port in self.ports if process.port_open(port)]
            if busy:
                raise ConfigError(
                    f"{self.name}: port(s) {', '.join(map(str, busy))} on 127.0.0.1 are taken by "
                    "another process; stop it or choose other ports (RESPONDER_STACK__*_PORT)"
                )
            self.prepare(progress)
            began = time.monotonic()
            pid = process.spawn(
                self.command(), log_file=self.log_file, cwd=self.home, env=self.env()
            )
            process.write_pid(self.pid_file, pid)
            progress(f"{self.name}: started (pid {pid}), waiting until {self.endpoint} answers")
            try:
                self.wait_ready(began + self.start_timeout_s)
            except BaseException:
                # Never leave a half-started server behind (an interrupted test session,
                # a timeout): the next start begins clean, and the error carries its log.
                process.terminate(pid, timeout_s=self.stop_timeout_s)
                self.pid_file.unlink(missing_ok=True)
                raise
            progress(f"{self.name}: ready at {self.endpoint} in {time.monotonic() - began:.1f} s")
            _log.debug("stack.started", service=self.name, pid=pid, endpoint=self.endpoint)

    def wait_ready(self, deadline: float) -> None:
        while True:
            pid = self.pid()
            if pid is None:
                raise PermanentError(
                    f"{self.name} exited during start; last lines of {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            if self.probe():
                return
            if time.monotonic() >= deadline:
                raise TemporaryError(
                    f"{self.name} (pid {pid}) did not answer at {self.endpoint} in time; "
                    f"see {self.log_file}",
                    delay=5.0,
                )
            time.sleep(0.1)

    def stop(self) -> None:
        with self._lock():
            pid = self.pid()
            if pid is not None:
                process.terminate(pid, timeout_s=self.stop_timeout_s)
                _log.debug("stack.stopped", service=self.name, pid=pid)
            self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server: a crash, for fault-injection tests. Data on disk stays."""
        with self._lock():
            pid = self.pid()
            if pid is not None:
                process.kill(pid)
            self.pid_file.unlink(missing_ok=True)

    def status(self) -> ServiceStatus:
        pid = self.pid()
        state = State.STOPPED if pid is None else State.READY if self.probe() else State.UNREADY
        return ServiceStatus(self.name, state, pid, self.endpoint, self.log_file)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server wrote, for error messages."""
        return process.tail_file(self.log_file, lines)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two `stack up`s at once (or a CLI and a test) must not start two servers.
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class OnePortService(ProcessService):
    """A server on one loopback port, told apart from other instances by its config file."""

    def __init__(
        self,
        name: str,
        home: Path,
        *,
        port: int,
        config_name: str,
        start_timeout_s: float,
        stop_timeout_s: float,
    ) -> None:
        super().__init__(
            name,
            home,
            ports=(port,),
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )
        self.port = port
        self.config_file = self.home / config_name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def marker(self) -> str:
        return str(self.config_file)


class ReloadableService(OnePortService):
    """Prometheus and Alertmanager: a YAML config reloaded through ``POST /-/reload``,
    readiness at ``/-/ready``, storage under ``data/``."""

    @abstractmethod
    def _write_config(self) -> None:
        """Write the config file for the current settings (before a start)."""

    def reload(self) -> None:
        """Make the running server read its config file again."""
        process.http_reload(self.port, what=self.name)

    def prepare(self, progress: Progress) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        self._write_config()

    def probe(self) -> bool:
        return process.http_request(self.port, "/-/ready")[0] == 200

    def _replace_config(self, config: Mapping[str, Any], *, private: bool = False) -> None:
        """Write ``config`` and, when the server runs, reload it; one it rejects changes nothing."""
        self.home.mkdir(parents=True, exist_ok=True)
        replace_config(
            config,
            self.config_file,
            reload=self.reload if self.pid() is not None else None,
            private=private,
        )


async def start_async(service: Service, progress: Progress = quiet) -> None:
    """``service.start`` without blocking the event loop."""
    await asyncio.to_thread(service.start, progress)


async def stop_async(service: Service) -> None:
    """``service.stop`` without blocking the event loop."""
    await asyncio.to_thread(service.stop)


async def status_async(service: Service) -> ServiceStatus:
    """``service.status`` without blocking the event loop."""
    return await asyncio.to_thread(service.status)
