"""Plain-process plumbing shared by every local server: spawn detached, pid files, stop, ports.

The servers outlive ``responder stack up`` (they are started in their own session
and found again through pid files), yet a test session that started them must also
reap them, so a child this process spawned is tracked by its ``Popen`` and any other
pid is checked through ``/proc``. A pid file is only trusted when the process it
names still carries the service's marker (its config path) on its command line, so a
recycled pid is never mistaken for our server, and never signalled.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from responder.errors import ConfigError, PermanentError

_POLL_S = 0.05

# Children spawned by this process, by pid: only they can be reaped (waited for) here.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    argv: Sequence[str], *, log_file: Path, cwd: Path, env: dict[str, str] | None = None
) -> int:
    """Start ``argv`` in its own session with stdout and stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - argv comes from settings, never from untrusted text
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    _children[proc.pid] = proc
    return proc.pid


def run_checked(argv: Sequence[str], *, cwd: Path, what: str, timeout_s: float) -> str:
    """Run a short command to completion; its output is returned, or raised with the error."""
    try:
        done = subprocess.run(  # noqa: S603 - argv comes from settings, never from untrusted text
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise PermanentError(f"{what}: {argv[0]} is not installed ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise PermanentError(f"{what}: no result within {timeout_s:.0f} s") from exc
    output = (done.stdout + done.stderr).decode(errors="replace")
    if done.returncode != 0:
        raise PermanentError(f"{what} failed (exit {done.returncode}):\n{tail_text(output)}")
    return output


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may hold spaces.
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def cmdline(pid: int) -> list[str]:
    """The command line of ``pid`` ([] when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pid(pid_file: Path, marker: str) -> int | None:
    """The live pid recorded in ``pid_file`` whose command line mentions ``marker``, if any."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not is_alive(pid):
        return None
    # Our own child counts even before it has exec'd (its cmdline is still ours then).
    if pid in _children or any(marker in arg for arg in cmdline(pid)):
        return pid
    return None


def write_pid(pid_file: Path, pid: int) -> None:
    """Record ``pid`` atomically, so a concurrent reader never sees half a number."""
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pid_file)


def terminate(pid: int, *, timeout_s: float) -> None:
    """SIGTERM ``pid``'s process group, then SIGKILL it if it is still there after ``timeout_s``."""
    _signal_group(pid, signal.SIGTERM)
    if wait_dead(pid, time.monotonic() + timeout_s):
        return
    _signal_group(pid, signal.SIGKILL)
    if not wait_dead(pid, time.monotonic() + 10.0):
        raise PermanentError(f"pid {pid} survived SIGKILL")


def kill(pid: int) -> None:
    """SIGKILL ``pid``'s process group at once (fault injection: no clean shutdown)."""
    _signal_group(pid, signal.SIGKILL)
    if not wait_dead(pid, time.monotonic() + 10.0):
        raise PermanentError(f"pid {pid} survived SIGKILL")


def wait_dead(pid: int, deadline: float) -> bool:
    """Poll until ``pid`` is gone or ``deadline`` (monotonic) passes; True when gone."""
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Our servers lead their own session (start_new_session), so the group is theirs alone.
    with contextlib.suppress(ProcessLookupError):
        try:
            os.killpg(pid, sig)
        except PermissionError:
            os.kill(pid, sig)


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now, outside the ephemeral range (see free_ports)."""
    return free_ports(1, host)[0]


_LISTEN_RANGE_LOW = 20_000
"""Test servers' ports are drawn from here up to the kernel's ephemeral range: above the
local stack's fixed ports (9092-19093), below the ports the kernel hands to outgoing
connections."""


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports nothing listens on right now (all held while choosing).

    A port the OS picks for ``bind(0)`` lies in its ephemeral range, which it also hands
    out as the local port of outgoing connections: between choosing such a port and the
    server binding it, any client connection (a Kafka consumer, an HTTP probe) can take
    it (seen in CI: a controller-manager port taken during a control plane's start). Ports
    below the ephemeral range are never given to outgoing connections, so they are drawn
    from there; a machine with no room below it falls back to the OS's choice.
    """
    high = _ephemeral_low() - 1
    rng = random.SystemRandom()
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        attempts = 0
        while len(ports) < count:
            attempts += 1
            candidate = rng.randint(_LISTEN_RANGE_LOW, high) if high > _LISTEN_RANGE_LOW else 0
            if attempts > 1000:
                candidate = 0
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
            if port in ports or (candidate and port_open(port, host, timeout_s=0.2)):
                continue
            ports.append(port)
        return ports


def tail_text(text: str, lines: int = 20) -> str:
    """The last ``lines`` lines of ``text``, for error messages."""
    return "\n".join(text.splitlines()[-lines:])


def tail_file(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16_384))
            return tail_text(fh.read().decode(errors="replace"), lines)
    except OSError:
        return ""


def http_request(
    port: int, path: str, *, method: str = "GET", body: bytes | None = None, timeout_s: float = 2.0
) -> tuple[int, str]:
    """One HTTP request to 127.0.0.1:``port``; (status, body), or (0, error) when unreachable."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc)
    finally:
        conn.close()


def http_reload(port: int, *, what: str) -> None:
    """``POST /-/reload`` (Prometheus, Alertmanager); a rejected config raises ``ConfigError``."""
    status, body = http_request(port, "/-/reload", method="POST", timeout_s=30)
    if status != 200:
        raise ConfigError(f"{what} rejected its new config: {status} {body.strip()}")
