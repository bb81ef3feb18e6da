"""The control plane's secrets, options and build driver, checked without starting it."""

from __future__ import annotations

import ipaddress
import json
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from responder.errors import ConfigError, PermanentError
from responder_dev.stack.kube import IDENTITIES, KubeOptions, Pki, ensure_binaries, write_kubeconfig


def test_pki_issues_serving_certs_signed_by_its_ca_with_loopback_names(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.ensure("127.96.0.0/16")

    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(pki.apiserver_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("127.96.0.1"),  # the `kubernetes` Service's ClusterIP
    }
    assert "kubernetes.default.svc" in san.get_values_for_type(x509.DNSName)

    for secret in (
        pki.ca_key,
        pki.apiserver_key,
        pki.components_key,
        pki.front_proxy_ca_key,
        pki.front_proxy_client_key,
        pki.sa_key,
        pki.tokens,
    ):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert stat.S_IMODE(pki.dir.stat().st_mode) == 0o700


def test_pki_is_kept_across_starts_so_kubeconfigs_stay_valid(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.ensure("127.96.0.0/16")
    before = {p.name: p.read_bytes() for p in pki.dir.iterdir()}
    pki.ensure("127.96.0.0/16")
    assert {p.name: p.read_bytes() for p in pki.dir.iterdir()} == before


def test_each_identity_gets_its_own_random_token(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.ensure("127.96.0.0/16")
    tokens = {name: pki.token(name) for name in IDENTITIES}
    assert len(set(tokens.values())) == len(IDENTITIES)
    assert all(len(token) >= 40 for token in tokens.values())

    other = Pki(tmp_path / "other")
    other.ensure("127.96.0.0/16")
    assert other.token("admin") != tokens["admin"]


def test_kubeconfig_embeds_the_ca_and_token(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.ensure("127.96.0.0/16")
    path = write_kubeconfig(
        tmp_path / "admin.kubeconfig",
        server="https://127.0.0.1:16443",
        ca_cert=pki.ca_cert,
        user="someone",
        token="abc",
    )
    config = json.loads(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"
    assert config["users"][0]["user"]["token"] == "abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_service_account_key_is_an_ec_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pki = Pki(tmp_path / "pki")
    pki.ensure("127.96.0.0/16")
    key = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)


@pytest.mark.parametrize("field", ["service_cidr", "pod_cidr"], ids=["services", "pods"])
@pytest.mark.parametrize("cidr", ["10.96.0.0/12", "192.168.0.0/16", "172.16.0.0/12", "8.8.8.0/24"])
def test_only_loopback_ranges_are_accepted(field: str, cidr: str) -> None:
    with pytest.raises(ConfigError, match="not loopback"):
        KubeOptions(**{field: cidr})  # type: ignore[arg-type]


def test_pod_range_must_fit_a_slash_24_per_node() -> None:
    with pytest.raises(ConfigError, match="too small"):
        KubeOptions(pod_cidr="127.64.0.0/24", nodes=2)
    KubeOptions(pod_cidr="127.64.0.0/23", nodes=2)


def test_pod_and_service_ranges_must_not_overlap() -> None:
    with pytest.raises(ConfigError, match="overlaps"):
        KubeOptions(service_cidr="127.64.0.0/16", pod_cidr="127.64.0.0/16")


def fake_build(tmp_path: Path, body: str) -> Path:
    """A build folder whose build.sh is ``body`` (the contract: progress lines, then a path)."""
    script = tmp_path / "build.sh"
    script.write_text("#!/usr/bin/env bash\nset -e\n" + body)
    script.chmod(0o755)
    return tmp_path


def test_a_failing_build_is_reported_with_its_output(tmp_path: Path) -> None:
    build = fake_build(
        tmp_path, 'echo "[kube-build 00:00:00] building"\necho "go: boom" >&2\nexit 3\n'
    )
    seen: list[str] = []
    with pytest.raises(PermanentError, match=r"(?s)exit 3.*go: boom"):
        ensure_binaries(KubeOptions(build_dir=build), seen.append)
    assert seen == ["kube: [kube-build 00:00:00] building"]


def test_a_build_past_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    build = fake_build(
        tmp_path,
        f"sleep 60 & echo $! > {pid_file}\n"
        'while true; do echo "[kube-build 00:00:00] still building"; sleep 0.2; done\n',
    )
    began = time.monotonic()
    with pytest.raises(PermanentError, match="took longer than"):
        ensure_binaries(KubeOptions(build_dir=build, build_timeout_s=1.0))
    assert time.monotonic() - began < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists()
