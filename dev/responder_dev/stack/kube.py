"""A real Kubernetes control plane as plain processes, for the actions and manifests to be tested against.

The responder changes Deployments, scales, HPAs, Services and HTTPRoutes, and ships
least-privilege RBAC; a fake API server would agree with whatever the code believes.
There is no Docker here (no kind, k3d, minikube), so this module runs the real thing:
etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from the Go
module proxy by ``deploy/local/kube/build.sh``, plus kwok, which stands in for the
kubelets so pods are scheduled, get (loopback) IPs and turn Ready.

``KubeControlPlane`` is one ``Service`` of the local stack (name ``kube``). On start it
builds or reuses the binaries, writes a CA, serving certificates, service-account
signing keys, static tokens and one kubeconfig per identity, starts the processes in
order on 127.0.0.1, then registers the fake nodes, installs the Gateway API CRDs and
applies the responder's namespace and RBAC from ``deploy/k8s``.
Every address it hands out, pod IPs included, is on the loopback range.

One consequence, by the API server's own validation: EndpointSlices (and Endpoints)
refuse loopback addresses, so the endpointslice controller cannot publish kwok's pods
behind a Service here. Code that needs "the ready pods behind a Service" on this
control plane reads the Pods (``actions.endpoint_source: pods``).
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import http.client
import ipaddress
import json
import os
import secrets
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from responder.errors import ConfigError, PermanentError, TemporaryError
from responder_dev.settings import DevSettings
from responder_dev.stack import process
from responder_dev.stack.service import ProcessService, Progress, ServiceStatus, State, quiet
from responder_dev.stack.templates import DEPLOY_DIR

_log = structlog.get_logger(__name__)

KUBE_VERSION = "v1.36.3"
"""What deploy/local/kube builds; the binaries report it as their version."""

DEFAULT_BUILD_DIR = DEPLOY_DIR / "local" / "kube"
DEFAULT_MANIFESTS_DIR = DEPLOY_DIR / "k8s"

RESPONDER_NAMESPACE = "responder"
RESPONDER_SERVICE_ACCOUNT = "responder"
WORKLOAD_NAMESPACE = "musearoo"
"""Where the seed runbooks' targets live; deploy/k8s/rbac.yaml binds the responder here."""

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
"""Nodes carrying this annotation (value ``fake``) are the ones kwok manages."""

ADMIN_USER = "musearoo-admin"


@dataclass(frozen=True)
class KubePorts:
    """TCP ports on 127.0.0.1; the defaults avoid every upstream default (2379, 6443, 10257, ...)."""

    apiserver: int = 16443
    etcd: int = 12379
    etcd_peer: int = 12380
    controller_manager: int = 12257
    scheduler: int = 12259
    kwok: int = 12247

    @classmethod
    def free(cls) -> KubePorts:
        """Ports nothing listens on right now (tests)."""
        return cls(*process.free_ports(6))


@dataclass(frozen=True)
class KubeOptions:
    """How the control plane is laid out; every address is loopback."""

    ports: KubePorts = KubePorts()
    service_cidr: str = "127.96.0.0/16"
    """ClusterIPs come from here. No kube-proxy runs, so nothing ever sends to them;
    loopback keeps even a stray client off private and public ranges."""
    pod_cidr: str = "127.64.0.0/16"
    """kwok gives pods IPs from here (a /24 per node): loopback, so a test that calls a
    pod IP can only reach this machine."""
    nodes: int = 1
    """Fake nodes kwok runs."""
    etcd_unsafe_no_fsync: bool = True
    """Skip fsync in etcd: the data is throw-away test state, and fsync on a shared
    CI disk makes every write wait; never use this store for anything kept."""
    build_dir: Path = DEFAULT_BUILD_DIR
    """deploy/local/kube: the Go modules and build.sh."""
    manifests_dir: Path = DEFAULT_MANIFESTS_DIR
    """deploy/k8s: its namespace.yaml and rbac.yaml are applied, as an operator would."""
    responder_token_ttl_s: int = 86_400
    """Lifetime of the TokenRequest token in the responder's kubeconfig; `stack up` renews it."""
    cache_dir: Path | None = None
    """Binaries and Go caches (None: build.sh's default, ~/.cache/musearoo-responder/kube)."""
    build_timeout_s: float = 3600.0
    """A cold build took ~8 min on 2 shared cores (see deploy/local/kube/README.md); a
    cached one returns at once. The slack is for a busier CI machine."""
    start_timeout_s: float = 120.0
    stop_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        for name in ("service_cidr", "pod_cidr"):
            net = ipaddress.ip_network(getattr(self, name))
            if not net.is_loopback:
                raise ConfigError(
                    f"kube {name} {net} is not loopback: the local control plane may only hand "
                    "out 127.0.0.0/8 addresses"
                )
        pods = ipaddress.ip_network(self.pod_cidr)
        if pods.overlaps(ipaddress.ip_network(self.service_cidr)):
            raise ConfigError(f"kube pod_cidr {pods} overlaps service_cidr {self.service_cidr}")
        if pods.prefixlen > 24 - max(0, (self.nodes - 1).bit_length()):
            raise ConfigError(f"kube pod_cidr {pods} is too small for {self.nodes} /24 node ranges")


# --- binaries ---------------------------------------------------------------------------


def ensure_binaries(options: KubeOptions, progress: Progress = quiet) -> Path:
    """Build the control plane once (or find the cached build) and return its folder."""
    script = options.build_dir / "build.sh"
    if not script.is_file():
        raise ConfigError(f"kube: {script} is missing")
    env = dict(os.environ)
    if options.cache_dir is not None:
        env["MUSEAROO_KUBE_CACHE"] = str(options.cache_dir)
    began = time.monotonic()
    lines: list[str] = []
    timed_out = read_to_end = False
    with subprocess.Popen(  # noqa: S603 - our own script, no untrusted text
        [str(script)],
        cwd=options.build_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        start_new_session=True,  # its own process group: a timeout stops the go commands too
    ) as proc:
        assert proc.stdout is not None
        try:
            # build.sh logs at least every 30 s while it builds, so this loop looks at
            # the clock that often.
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                if line.startswith("[kube-build"):
                    progress(f"kube: {line}")
                if time.monotonic() - began > options.build_timeout_s:
                    timed_out = True
                    break
            else:
                read_to_end = True
        finally:
            # Timed out, or interrupted (Ctrl-C): stop the whole build, not only bash.
            if not read_to_end and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
    if timed_out:
        raise PermanentError(
            f"kube: {script} took longer than {options.build_timeout_s:.0f} s and was stopped; "
            f"last lines:\n{process.tail_text(chr(10).join(lines), 20)}"
        )
    if rc != 0 or not lines:
        raise PermanentError(
            f"kube: {script} failed (exit {rc}):\n{process.tail_text(chr(10).join(lines), 40)}"
        )
    bin_dir = Path(lines[-1])
    if not (bin_dir / "kube-apiserver").is_file():
        raise PermanentError(f"kube: {script} printed {bin_dir}, which holds no kube-apiserver")
    _log.info("kube.binaries", dir=str(bin_dir), seconds=round(time.monotonic() - began, 1))
    return bin_dir


# --- certificates, keys, tokens, kubeconfigs --------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A static-token user of the API server."""

    user: str
    groups: tuple[str, ...]


IDENTITIES: dict[str, Identity] = {
    # The harness and `responder stack` tooling: cluster admin.
    "admin": Identity(ADMIN_USER, ("system:masters",)),
    # The bootstrap RBAC policy binds these users' roles (system:kube-controller-manager,
    # system:kube-scheduler), as kubeadm's client certificates do.
    "controller-manager": Identity("system:kube-controller-manager", ()),
    "scheduler": Identity("system:kube-scheduler", ()),
    # kwok plays every kubelet at once (nodes, leases, pod status of all namespaces).
    "kwok": Identity("system:kwok", ("system:masters",)),
}


@dataclass(frozen=True)
class Pki:
    """Where the control plane's secrets live (``<home>/pki``, mode 0700)."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def components_cert(self) -> Path:
        """Serving certificate of controller-manager and scheduler (127.0.0.1, localhost)."""
        return self.dir / "components.crt"

    @property
    def components_key(self) -> Path:
        return self.dir / "components.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def tokens(self) -> Path:
        return self.dir / "tokens.csv"

    def token(self, identity: str) -> str:
        """The static token of one of ``IDENTITIES``."""
        user = IDENTITIES[identity].user
        for line in self.tokens.read_text().splitlines():
            token, name, *_ = line.split(",")
            if name == user:
                return token
        raise PermanentError(f"kube: no token for {user} in {self.tokens}")

    @property
    def front_proxy_ca_cert(self) -> Path:
        """CA of the aggregation layer's request-header client (kubeadm's front-proxy-ca)."""
        return self.dir / "front-proxy-ca.crt"

    @property
    def front_proxy_ca_key(self) -> Path:
        return self.dir / "front-proxy-ca.key"

    @property
    def front_proxy_client_cert(self) -> Path:
        return self.dir / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.dir / "front-proxy-client.key"

    def ensure(self, service_cidr: str) -> None:
        """Create what is missing; an existing CA and keys are kept so kubeconfigs stay valid."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        if _new_ca(self.ca_cert, self.ca_key, "musearoo-local-kube-ca"):
            for leaf in (self.apiserver_cert, self.components_cert):
                leaf.unlink(missing_ok=True)
        if _new_ca(self.front_proxy_ca_cert, self.front_proxy_ca_key, "musearoo-front-proxy-ca"):
            self.front_proxy_client_cert.unlink(missing_ok=True)
        first_service_ip = next(ipaddress.ip_network(service_cidr).hosts())
        if not self.apiserver_cert.exists():
            _issue(
                (self.ca_cert, self.ca_key),
                (self.apiserver_cert, self.apiserver_key),
                "kube-apiserver",
                dns=(
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ),
                ips=("127.0.0.1", str(first_service_ip)),
            )
        if not self.components_cert.exists():
            _issue(
                (self.ca_cert, self.ca_key),
                (self.components_cert, self.components_key),
                "kube-components",
                dns=("localhost",),
                ips=("127.0.0.1",),
            )
        if not self.front_proxy_client_cert.exists():
            _issue(
                (self.front_proxy_ca_cert, self.front_proxy_ca_key),
                (self.front_proxy_client_cert, self.front_proxy_client_key),
                "front-proxy-client",
                client=True,
            )
        if not (self.sa_key.exists() and self.sa_pub.exists()):
            sa = ec.generate_private_key(ec.SECP256R1())
            _write_key(self.sa_key, sa)
            self.sa_pub.write_bytes(
                sa.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        if not self.tokens.exists():
            lines = []
            for identity in IDENTITIES.values():
                groups = ",".join(identity.groups)
                uid = identity.user.replace(":", "-")
                lines.append(f'{secrets.token_urlsafe(32)},{identity.user},{uid},"{groups}"')
            _write_private(self.tokens, ("\n".join(lines) + "\n").encode())


def _new_ca(cert_path: Path, key_path: Path, cn: str) -> bool:
    """Create a self-signed CA unless both files exist; True when one was created."""
    if cert_path.exists() and key_path.exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        _cert_builder(name, name, key.public_key(), days=3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def _issue(
    ca: tuple[Path, Path],
    leaf: tuple[Path, Path],
    cn: str,
    *,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    client: bool = False,
) -> None:
    """Issue a leaf certificate: a server's (with SANs) or, with ``client``, a client's."""
    ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PermanentError(f"kube: {ca[1]} is not an EC key")
    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _cert_builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]),
            ca_cert.subject,
            key.public_key(),
            days=365,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
    )
    if client:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH
        san = x509.SubjectAlternativeName(
            [x509.DNSName(name) for name in dns]
            + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        )
        builder = builder.add_extension(san, critical=False)
    cert = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).sign(
        ca_key, hashes.SHA256()
    )
    _write_key(leaf[1], key)
    leaf[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _cert_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, *, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, user: str, token: str) -> Path:
    """A kubeconfig (JSON is YAML) for one token identity, readable by kubectl and the clients."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "local", "user": user}}],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, json.dumps(config, indent=2).encode())
    return path


# --- probes -----------------------------------------------------------------------------


def _http(
    method: str,
    port: int,
    path: str,
    *,
    ca_cert: Path | None = None,
    token: str | None = None,
    body: object = None,
    timeout_s: float = 2.0,
) -> tuple[int, bytes]:
    """One request to 127.0.0.1 (HTTPS when ``ca_cert`` is given); (0, error) when it fails."""
    conn: http.client.HTTPConnection
    if ca_cert is not None:
        context = ssl.create_default_context(cafile=str(ca_cert))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout_s, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc).encode()
    finally:
        conn.close()


def _get(
    port: int, path: str, *, ca_cert: Path | None = None, token: str | None = None
) -> tuple[int, str]:
    """A probe's GET: status and (decoded) body."""
    status, body = _http("GET", port, path, ca_cert=ca_cert, token=token)
    return status, body.decode(errors="replace")


def _condition_true(obj: dict[str, Any], kind: str) -> bool:
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


# --- the processes ----------------------------------------------------------------------


class _Part(ProcessService):
    """One process of the control plane, sharing the control plane's folder and options."""

    def __init__(self, name: str, plane: KubeControlPlane, ports: Sequence[int]) -> None:
        super().__init__(
            name,
            plane.home,
            ports=ports,
            start_timeout_s=plane.options.start_timeout_s,
            stop_timeout_s=plane.options.stop_timeout_s,
        )
        self.plane = plane

    def prepare(self, progress: Progress) -> None:
        """The control plane prepares the shared files before any part starts."""

    def binary(self, name: str) -> str:
        return str(self.plane.bin_dir / name)


class _Etcd(_Part):
    def __init__(self, plane: KubeControlPlane) -> None:
        ports = plane.options.ports
        super().__init__("etcd", plane, (ports.etcd, ports.etcd_peer))
        self.data_dir = plane.home / "etcd-data"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.plane.options.ports.etcd}"

    @property
    def marker(self) -> str:
        return f"--data-dir={self.data_dir}"

    def command(self) -> list[str]:
        ports = self.plane.options.ports
        peer = f"http://127.0.0.1:{ports.etcd_peer}"
        argv = [
            self.binary("etcd"),
            "--name=local",
            self.marker,
            f"--listen-client-urls={self.endpoint}",
            f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=local={peer}",
            "--log-level=warn",
        ]
        if self.plane.options.etcd_unsafe_no_fsync:
            argv.append("--unsafe-no-fsync=true")
        return argv

    def probe(self) -> bool:
        status, body = _get(self.plane.options.ports.etcd, "/health")
        return status == 200 and '"health":"true"' in body


class _Apiserver(_Part):
    def __init__(self, plane: KubeControlPlane) -> None:
        super().__init__("kube-apiserver", plane, (plane.options.ports.apiserver,))

    @property
    def endpoint(self) -> str:
        return self.plane.server

    @property
    def marker(self) -> str:
        return f"--token-auth-file={self.plane.pki.tokens}"

    def command(self) -> list[str]:
        pki = self.plane.pki
        options = self.plane.options
        return [
            self.binary("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{options.ports.etcd}",
            f"--secure-port={options.ports.apiserver}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={pki.dir}",
            f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}",
            # The request-header (front proxy) CA, as kubeadm sets it: controller-manager
            # and scheduler authenticate delegated requests against it.
            f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
            f"--proxy-client-key-file={pki.front_proxy_client_key}",
            f"--service-cluster-ip-range={options.service_cidr}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={self.plane.server}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            self.marker,
            # The `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints
            # validation rejects; nothing in-cluster needs it.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def probe(self) -> bool:
        status, body = _get(
            self.plane.options.ports.apiserver,
            "/readyz",
            ca_cert=self.plane.pki.ca_cert,
            token=self.plane.pki.token("admin"),
        )
        return status == 200 and body.strip() == "ok"


class _Component(_Part):
    """kube-controller-manager or kube-scheduler: a client of the API server with /healthz."""

    def __init__(self, name: str, plane: KubeControlPlane, identity: str, port: int) -> None:
        super().__init__(name, plane, (port,))
        self.port = port
        self.kubeconfig = plane.home / "kubeconfig" / f"{identity}.kubeconfig"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def marker(self) -> str:
        return f"--kubeconfig={self.kubeconfig}"

    def common_flags(self) -> list[str]:
        pki = self.plane.pki
        return [
            self.marker,
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki.components_cert}",
            f"--tls-private-key-file={pki.components_key}",
            "--leader-elect=false",
            "--v=1",
        ]

    def probe(self) -> bool:
        status, body = _get(self.port, "/healthz", ca_cert=self.plane.pki.ca_cert)
        return status == 200 and body.strip() == "ok"


class _ControllerManager(_Component):
    def __init__(self, plane: KubeControlPlane) -> None:
        super().__init__(
            "kube-controller-manager",
            plane,
            "controller-manager",
            plane.options.ports.controller_manager,
        )

    def command(self) -> list[str]:
        pki = self.plane.pki
        return [
            self.binary("kube-controller-manager"),
            *self.common_flags(),
            # Each controller acts as its own service account, as in kubeadm clusters,
            # so the bootstrap RBAC roles apply to them one by one.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-cluster-ip-range={self.plane.options.service_cidr}",
            "--controllers=*",
        ]


class _Scheduler(_Component):
    def __init__(self, plane: KubeControlPlane) -> None:
        super().__init__("kube-scheduler", plane, "scheduler", plane.options.ports.scheduler)

    def command(self) -> list[str]:
        return [self.binary("kube-scheduler"), *self.common_flags()]


class _Kwok(_Part):
    def __init__(self, plane: KubeControlPlane) -> None:
        super().__init__("kwok", plane, (plane.options.ports.kwok,))
        self.kubeconfig = plane.home / "kubeconfig" / "kwok.kubeconfig"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.plane.options.ports.kwok}"

    @property
    def marker(self) -> str:
        return f"--kubeconfig={self.kubeconfig}"

    def command(self) -> list[str]:
        pod_net = ipaddress.ip_network(self.plane.options.pod_cidr)
        return [
            self.binary("kwok"),
            f"--config={self.plane.bin_dir / 'kwok-stages.yaml'}",
            self.marker,
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            # Pod IPs of a node come from its spec.podCIDR; this is the fallback.
            f"--cidr={next(pod_net.hosts())}/{pod_net.prefixlen}",
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{self.plane.options.ports.kwok}",
        ]

    def probe(self) -> bool:
        status, _ = _get(self.plane.options.ports.kwok, "/healthz")
        return status == 200


# --- the service ------------------------------------------------------------------------


class KubeControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok: the ``kube`` service."""

    def __init__(self, home: Path, options: KubeOptions | None = None) -> None:
        self.home = home.resolve()
        self.options = options or KubeOptions()
        self.pki = Pki(self.home / "pki")
        self._bin_dir: Path | None = None
        self.parts: tuple[_Part, ...] = (
            _Etcd(self),
            _Apiserver(self),
            _ControllerManager(self),
            _Scheduler(self),
            _Kwok(self),
        )

    # Service protocol

    @property
    def name(self) -> str:
        return "kube"

    @property
    def endpoint(self) -> str:
        return self.server

    @property
    def server(self) -> str:
        """The API server's URL."""
        return f"https://127.0.0.1:{self.options.ports.apiserver}"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            raise PermanentError("kube: binaries not resolved yet; call start() first")
        return self._bin_dir

    def start(self, progress: Progress = quiet) -> None:
        began = time.monotonic()
        with self._lock():
            self._bin_dir = ensure_binaries(self.options, progress)
            self.pki.ensure(self.options.service_cidr)
            for identity in IDENTITIES:
                self._write_component_kubeconfig(identity)
            for part in self.parts:
                part.start(progress)
            self.bootstrap(progress)
        progress(f"kube: control plane ready at {self.server} in {time.monotonic() - began:.1f} s")

    def wait_ready(self, deadline: float) -> None:
        for part in self.parts:
            part.wait_ready(deadline)

    def stop(self) -> None:
        with self._lock():
            for part in reversed(self.parts):
                part.stop()

    def status(self) -> ServiceStatus:
        apiserver = self.parts[1]
        states = [part.status().state for part in self.parts]
        if all(state is State.STOPPED for state in states):
            state = State.STOPPED
        elif all(state is State.READY for state in states):
            state = State.READY
        else:
            state = State.UNREADY
        return ServiceStatus(self.name, state, apiserver.pid(), self.endpoint, apiserver.log_file)

    # What tests and tooling use

    @property
    def admin_kubeconfig(self) -> Path:
        return self.home / "kubeconfig" / "admin.kubeconfig"

    def kubeconfig_for_token(self, name: str, user: str, token: str) -> Path:
        """Write a kubeconfig for a token identity (e.g. a TokenRequest token) and return it."""
        return write_kubeconfig(
            self.home / "kubeconfig" / f"{name}.kubeconfig",
            server=self.server,
            ca_cert=self.pki.ca_cert,
            user=user,
            token=token,
        )

    def kubectl(self, *args: str, kubeconfig: Path | None = None, timeout_s: float = 60.0) -> str:
        """Run the kubectl built with the control plane; raise PermanentError on failure."""
        argv = [
            str(self.bin_dir / "kubectl"),
            f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
            # Discovery cached per control plane, not in the user's ~/.kube.
            f"--cache-dir={self.home / 'kubectl-cache'}",
            *args,
        ]
        return process.run_checked(argv, cwd=self.home, what="kubectl", timeout_s=timeout_s)

    def api(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        """One API request as the admin; the decoded JSON answer, or PermanentError."""
        status, raw = _http(
            method,
            self.options.ports.apiserver,
            path,
            ca_cert=self.pki.ca_cert,
            token=self.pki.token("admin"),
            body=body,
            timeout_s=10.0,
        )
        if not 200 <= status < 300:
            raise PermanentError(f"kube: {method} {path} answered {status}: {raw[:500]!r}")
        answer: dict[str, Any] = json.loads(raw)
        return answer

    def _wait_condition(self, path: str, condition: str, deadline: float) -> None:
        while True:
            status, raw = _http(
                "GET",
                self.options.ports.apiserver,
                path,
                ca_cert=self.pki.ca_cert,
                token=self.pki.token("admin"),
            )
            if status == 200 and _condition_true(json.loads(raw), condition):
                return
            if time.monotonic() >= deadline:
                raise TemporaryError(f"kube: {path} not {condition} in time (last: {status})")
            time.sleep(0.1)

    def _wait_responder_bound(self, deadline: float) -> None:
        """Until the authorizer has seen rbac.yaml's RoleBinding (it learns through a watch)."""
        user = f"system:serviceaccount:{RESPONDER_NAMESPACE}:{RESPONDER_SERVICE_ACCOUNT}"
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {
                    "namespace": WORKLOAD_NAMESPACE,
                    "verb": "patch",
                    "group": "apps",
                    "resource": "deployments",
                },
            },
        }
        path = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
        while not self.api("POST", path, review).get("status", {}).get("allowed"):
            if time.monotonic() >= deadline:
                raise TemporaryError(
                    f"kube: {user} still cannot patch deployments in {WORKLOAD_NAMESPACE}; "
                    f"is {self.options.manifests_dir / 'rbac.yaml'} applied?"
                )
            time.sleep(0.1)

    def node_names(self) -> list[str]:
        return [f"kwok-node-{i}" for i in range(self.options.nodes)]

    @property
    def responder_kubeconfig(self) -> Path:
        """Kubeconfig of serviceaccount responder/responder (a TokenRequest token)."""
        return self.home / "kubeconfig" / "responder.kubeconfig"

    def bootstrap(self, progress: Progress = quiet) -> None:
        """Register kwok's nodes, install the Gateway API CRDs, apply the responder's
        namespace and RBAC from deploy/k8s, and write its kubeconfig (idempotent)."""
        generated = self.home / "bootstrap"
        generated.mkdir(exist_ok=True)
        nodes = generated / "nodes.json"
        nodes.write_text(json.dumps(self._nodes_manifest(), indent=2))
        workloads = generated / "namespaces.json"
        workloads.write_text(
            json.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WORKLOAD_NAMESPACE}}
            )
        )
        # Server-side apply: the Gateway API CRDs are too large for the annotation that
        # client-side apply keeps.
        self.kubectl(
            "apply",
            "--server-side",
            "--field-manager=musearoo-stack",
            # Generated and upstream files: skip kubectl's schema round trips (~1 s).
            "--validate=false",
            *("-f", str(nodes)),
            *("-f", str(self.bin_dir / "crds" / "gateway-api")),
            *("-f", str(workloads)),
        )
        # The project's own manifests the way its README tells an operator to apply them
        # (plain `kubectl apply`), namespace first.
        manifests = self.options.manifests_dir
        self.kubectl(
            "apply",
            *("-f", str(manifests / "namespace.yaml")),
            *("-f", str(manifests / "rbac.yaml")),
        )
        deadline = time.monotonic() + self.options.start_timeout_s
        crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        for crd in ("httproutes", "gateways"):
            self._wait_condition(f"{crds}/{crd}.gateway.networking.k8s.io", "Established", deadline)
        for name in self.node_names():
            self._wait_condition(f"/api/v1/nodes/{name}", "Ready", deadline)
        self._wait_responder_bound(deadline)
        review = self.api(
            "POST",
            f"/api/v1/namespaces/{RESPONDER_NAMESPACE}/serviceaccounts/"
            f"{RESPONDER_SERVICE_ACCOUNT}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.options.responder_token_ttl_s},
            },
        )
        token = str(review["status"]["token"])
        self.kubeconfig_for_token(
            "responder",
            f"system:serviceaccount:{RESPONDER_NAMESPACE}:{RESPONDER_SERVICE_ACCOUNT}",
            token,
        )
        progress(
            f"kube: {self.options.nodes} kwok node(s) Ready, Gateway API CRDs installed; "
            f"kubeconfigs: admin {self.admin_kubeconfig}, "
            f"serviceaccount {RESPONDER_NAMESPACE}/{RESPONDER_SERVICE_ACCOUNT} "
            f"{self.responder_kubeconfig}"
        )

    def _nodes_manifest(self) -> dict[str, object]:
        pods = ipaddress.ip_network(self.options.pod_cidr)
        ranges = pods.subnets(new_prefix=24)
        items = []
        for name, cidr in zip(self.node_names(), ranges, strict=False):
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {KWOK_NODE_ANNOTATION: "fake"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                        },
                    },
                    "spec": {"podCIDR": str(cidr), "podCIDRs": [str(cidr)]},
                }
            )
        return {"apiVersion": "v1", "kind": "List", "items": items}

    def _write_component_kubeconfig(self, identity: str) -> None:
        write_kubeconfig(
            self.home / "kubeconfig" / f"{identity}.kubeconfig",
            server=self.server,
            ca_cert=self.pki.ca_cert,
            user=IDENTITIES[identity].user,
            token=self.pki.token(identity),
        )

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # The parts lock <home>/.lock one at a time; the whole start takes its own lock.
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".control-plane.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def kube_service(settings: DevSettings, root: Path) -> KubeControlPlane:
    """The stack's ``kube`` service, from the settings (for ``responder_dev.stack.stack.SERVICES``)."""
    k = settings.kube_stack
    return KubeControlPlane(
        root / "kube",
        KubeOptions(
            ports=KubePorts(
                apiserver=k.apiserver_port,
                etcd=k.etcd_port,
                etcd_peer=k.etcd_peer_port,
                controller_manager=k.controller_manager_port,
                scheduler=k.scheduler_port,
                kwok=k.kwok_port,
            ),
            service_cidr=k.service_cidr,
            pod_cidr=k.pod_cidr,
            nodes=k.nodes,
            cache_dir=Path(settings.stack.cache_dir).expanduser() / "kube",
            build_timeout_s=k.build_timeout_s,
            start_timeout_s=settings.stack.start_timeout_s,
            stop_timeout_s=settings.stack.stop_timeout_s,
        ),
    )
