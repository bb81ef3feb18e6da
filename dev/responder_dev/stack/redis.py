"""Redis for the local stack: Debian's ``redis-server`` on loopback, checked with a real PING.

The ``cache.clear`` action and its tests need a real Redis. Persistence is off (the
cache is disposable), so start and stop take milliseconds.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from responder.errors import ConfigError
from responder_dev.stack.service import OnePortService, Progress
from responder_dev.stack.templates import render


class Redis(OnePortService):
    """``redis-server`` bound to 127.0.0.1."""

    def __init__(
        self, home: Path, *, port: int, start_timeout_s: float = 30.0, stop_timeout_s: float = 10.0
    ) -> None:
        super().__init__(
            "redis",
            home,
            port=port,
            config_name="redis.conf",
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
        )

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def prepare(self, progress: Progress) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            render(
                "local/redis/redis.conf",
                port=self.port,
                data_dir=self.home / "data",
                log_file=self.home / "logs" / "redis.log",
            )
        )

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError("redis-server is not installed: run deploy/local/install.sh")
        return [binary, str(self.config_file)]

    def probe(self) -> bool:
        return ping(self.port)


def ping(port: int, timeout_s: float = 1.0) -> bool:
    """Whether Redis on 127.0.0.1:``port`` answers PING with PONG (RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
