"""free_ports: ports for test servers that outgoing connections cannot take."""

from __future__ import annotations

import socket
from pathlib import Path

from responder_dev.stack.process import free_ports


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    low, _high = _ephemeral_range()
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert all(20_000 <= port < low for port in ports), ports
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
            sock.listen()


def test_outgoing_connections_take_ports_from_the_ephemeral_range_only() -> None:
    low, high = _ephemeral_range()
    chosen = set(free_ports(20))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(200)
        clients = [socket.create_connection(server.getsockname()) for _ in range(100)]
        try:
            local_ports = {client.getsockname()[1] for client in clients}
        finally:
            for client in clients:
                client.close()
    assert all(low <= port <= high for port in local_ports)
    assert not (local_ports & chosen)
