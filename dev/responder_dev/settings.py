"""The development tools' settings: the runtime ``Settings`` plus the local stack's groups.

The stack's ports, folders and timeouts mean nothing to a production install, so they
live with the tools that use them. ``DevSettings`` extends the runtime root rather than
standing beside it: the stack needs the runtime groups too (where ingest listens, its
bearer token, the topic prefix), and one object read once from the environment keeps
the variable names as they were (``RESPONDER_STACK__KAFKA_PORT``,
``RESPONDER_KUBE_STACK__NODES``). The runtime ``Settings`` ignores these variables.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from responder.settings import Settings


class StackSettings(BaseModel):
    """The local stack of real servers (``responder stack up``, the demo, the test fixtures).

    Ports avoid the Debian packages' defaults (Redis 6379, Prometheus 9090, Alertmanager
    9093/9094, node exporter 9100) so a system service started by ``apt-get install`` can
    never answer in place of ours; Kafka keeps 9092 (no Debian service uses it) so
    ``kafka.bootstrap``'s default reaches it, and its controller avoids Alertmanager's 9093.
    """

    root_dir: str = Field(
        ".stack",
        description="Folder (relative to the working directory, git-ignored) holding every "
        "server's config, data, logs and pid file; delete it to start from scratch.",
    )
    cache_dir: str = Field(
        "~/.cache/musearoo-responder",
        description="Downloads outside git (the Kafka jars): kept across checkouts and stack resets.",
    )
    kafka_version: str = Field(
        "4.4.0", description="org.apache.kafka:kafka_2.13 version resolved from Maven Central."
    )
    kafka_port: int = Field(
        9092, ge=1, le=65535, description="Kafka client listener (PLAINTEXT) on 127.0.0.1."
    )
    kafka_controller_port: int = Field(
        9192,
        ge=1,
        le=65535,
        description="KRaft controller listener; not 9093, which is Alertmanager's default.",
    )
    kafka_heap: str = Field(
        "512m",
        description="JVM -Xmx for the broker: enough for tests and the demo on a 2-core machine "
        "shared with the workers (the tarball's scripts use 1G).",
    )
    redis_port: int = Field(16379, ge=1, le=65535, description="Redis on 127.0.0.1.")
    prometheus_port: int = Field(19090, ge=1, le=65535, description="Prometheus on 127.0.0.1.")
    prometheus_scrape_interval_s: int = Field(
        5, ge=1, description="Seconds between scrapes of ingest's /metrics; short for a dev loop."
    )
    alertmanager_port: int = Field(19093, ge=1, le=65535, description="Alertmanager on 127.0.0.1.")
    alertmanager_group_interval_s: int = Field(
        10,
        ge=1,
        description="Alertmanager group_interval in seconds (default 5 m): how soon changes to a "
        "group, and failed sends, are delivered again; short so the demo reacts at once.",
    )
    start_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Seconds one server may take to answer after its start (a cold JVM on a busy "
        "2-core machine takes ~10 s; the slack is for CI).",
    )
    stop_timeout_s: float = Field(
        20.0,
        gt=0,
        description="Seconds between SIGTERM and SIGKILL: Kafka's clean shutdown takes a few.",
    )


class KubeStackSettings(BaseModel):
    """The local Kubernetes control plane of the stack (``responder_dev.stack.kube``).

    Every address is loopback: the API server and its parts bind 127.0.0.1, and the
    ranges it hands out (ClusterIPs, kwok's pod IPs) are inside 127.0.0.0/8 so that
    nothing a test or the demo calls can leave the machine. Ports avoid the upstream
    defaults (6443, 2379/2380, 10257, 10259, 10247).
    """

    apiserver_port: int = Field(16443, ge=1, le=65535, description="kube-apiserver HTTPS.")
    etcd_port: int = Field(12379, ge=1, le=65535, description="etcd client URL (plain HTTP).")
    etcd_peer_port: int = Field(12380, ge=1, le=65535, description="etcd peer URL (one member).")
    controller_manager_port: int = Field(
        12257, ge=1, le=65535, description="kube-controller-manager /healthz (HTTPS)."
    )
    scheduler_port: int = Field(
        12259, ge=1, le=65535, description="kube-scheduler /healthz (HTTPS)."
    )
    kwok_port: int = Field(12247, ge=1, le=65535, description="kwok's /healthz and metrics (HTTP).")
    service_cidr: str = Field(
        "127.96.0.0/16",
        description="--service-cluster-ip-range. No kube-proxy runs, so ClusterIPs are never "
        "reachable; loopback so that a stray client cannot reach another network either.",
    )
    pod_cidr: str = Field(
        "127.64.0.0/16",
        description="Pod IPs kwok assigns, a /24 per node: loopback, so actions that call pod "
        "addresses (model.reload) can only reach servers a test started on this machine.",
    )
    nodes: int = Field(
        2, ge=1, le=64, description="Fake (kwok) nodes; two exercise spreading and PDBs."
    )
    build_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="Seconds the first build from the Go module proxy may take (about 10-25 min "
        "on 2 shared cores); later starts reuse the cached binaries.",
    )


class DevSettings(Settings):
    """The runtime settings and the local stack's: what ``responder stack`` and ``responder
    demo`` read."""

    stack: StackSettings = StackSettings()
    kube_stack: KubeStackSettings = KubeStackSettings()


@lru_cache(maxsize=1)
def get_dev_settings() -> DevSettings:
    """The development tools' settings, read from the environment once."""
    return DevSettings()


def settings_env(settings: Settings, groups: tuple[str, ...] | None = None) -> dict[str, str]:
    """The ``RESPONDER_<GROUP>__<FIELD>`` variables that make another ``responder`` process
    (a worker, ingest) read exactly ``settings``: every group, or those named in ``groups``.

    Secrets are written in clear (the child must read them); unset optional fields are left
    out, so the child's own default applies; lists and mappings are JSON, as the settings
    parse them.
    """
    env: dict[str, str] = {}
    for group in groups or tuple(type(settings).model_fields):
        model = getattr(settings, group)
        for name in type(model).model_fields:
            value = getattr(model, name)
            if value is not None:
                env[f"RESPONDER_{group.upper()}__{name.upper()}"] = _env_text(value)
    return env


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    return value


def _env_text(value: Any) -> str:
    plain = _plain(value)
    if isinstance(plain, bool):
        return str(plain).lower()
    if isinstance(plain, dict | list):
        return json.dumps(plain)
    return str(plain)
