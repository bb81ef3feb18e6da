"""The process plumbing under every server: failed starts are reported and cleaned up, pids are
never trusted blindly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from responder.errors import ConfigError, PermanentError, TemporaryError
from responder_dev.stack import process
from responder_dev.stack.redis import Redis
from responder_dev.stack.templates import render, require_loopback


class _NeverAnswers(Redis):
    def probe(self) -> bool:
        return False


class _ExitsAtOnce(Redis):
    def command(self) -> list[str]:
        return ["/bin/sh", "-c", "echo boom-on-stderr >&2; exit 3", "sh", self.marker]


def test_a_server_that_never_answers_is_stopped_and_reported(tmp_path: Path) -> None:
    server = _NeverAnswers(tmp_path, port=process.free_port(), start_timeout_s=1, stop_timeout_s=5)
    with pytest.raises(TemporaryError, match="did not answer"):
        server.start()
    assert server.pid() is None
    assert not server.pid_file.exists()
    assert not process.port_open(server.port)


def test_a_server_that_exits_reports_its_log(tmp_path: Path) -> None:
    server = _ExitsAtOnce(tmp_path, port=process.free_port())
    with pytest.raises(PermanentError, match="boom-on-stderr"):
        server.start()
    assert server.pid() is None


def test_a_pid_file_naming_someone_else_is_not_trusted(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but not the server
    assert process.read_pid(pid_file, marker=str(tmp_path / "x.conf")) is None
    pid_file.write_text("not a pid\n")
    assert process.read_pid(pid_file, marker="x") is None


def test_terminate_escalates_to_sigkill(tmp_path: Path) -> None:
    # A process that ignores SIGTERM is killed once the stop timeout has passed.
    pid = process.spawn(
        ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
        log_file=tmp_path / "out.log",
        cwd=tmp_path,
    )
    process.terminate(pid, timeout_s=0.5)
    assert not process.is_alive(pid)


def test_a_child_that_exited_is_not_alive(tmp_path: Path) -> None:
    pid = process.spawn(["/bin/true"], log_file=tmp_path / "out.log", cwd=tmp_path)
    assert process.wait_dead(pid, deadline=time.monotonic() + 10)
    assert process.read_pid(tmp_path / "none.pid", marker="x") is None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:9092", "http://127.0.0.1:9095/v1/alertmanager", "http://localhost:1/", "[::1]:80"],
)
def test_loopback_addresses_are_accepted(address: str) -> None:
    require_loopback(address, what="target")


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1:9100", "http://172.16.0.1/", "192.168.1.5:80", "0.0.0.0:9090", "example.com:80"],
)
def test_addresses_off_loopback_are_refused(address: str) -> None:
    with pytest.raises(ConfigError, match="not on the loopback"):
        require_loopback(address, what="target")


def test_a_template_field_left_unfilled_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"redis\.conf"):
        render("local/redis/redis.conf", port=1)  # data_dir and log_file missing
