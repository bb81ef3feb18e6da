"""Local control plane figures: build-cache hit, start (fresh and reused), stop, rollouts, RSS.

    .venv/bin/python bench/kube_bench.py               # 3 fresh starts, 10 rollouts
    .venv/bin/python bench/kube_bench.py --starts 5 --rollouts 20

What a developer and CI wait for: ``build.sh`` when the binaries are cached (the cold
build is measured by running it on an empty cache: see deploy/local/kube/build.sh's
log line "built in N s"), a control plane started in a fresh folder (certificates,
five processes, nodes, CRDs, RBAC), the same ``start`` on a running one (what a second
``responder stack up`` costs), ``stop``, and how long a Deployment takes to roll out
to Ready kwok pods and to roll again after a template change. The baseline in the same
run is one authenticated ``GET /readyz`` round trip to the API server: the rollout
figures are also given as multiples of it. Everything runs on 127.0.0.1 free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.config import new_client_from_config

from responder_dev.stack.kube import (
    DEFAULT_BUILD_DIR,
    KubeControlPlane,
    KubeOptions,
    KubePorts,
    _get,
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "p95": round(pct(values, 0.95), 3),
        "max": round(max(values), 3),
    }


def rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]},
            },
        },
    }


async def wait_rolled_out(apps: k8s.AppsV1Api, ns: str, name: str, generation: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dep = await apps.read_namespaced_deployment(name, ns)
        st = dep.status
        if (
            dep.metadata.generation >= generation
            and (st.observed_generation or 0) >= dep.metadata.generation
            and st.updated_replicas == 2
            and st.replicas == 2
            and st.available_replicas == 2
        ):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{ns}/{name} did not roll out")


async def rollouts(plane: KubeControlPlane, count: int) -> dict[str, Any]:
    api = await new_client_from_config(config_file=str(plane.admin_kubeconfig))
    try:
        apps = k8s.AppsV1Api(api)
        core = k8s.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": "bench"}})
        # The namespace's default ServiceAccount must exist before pods can be created.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (await core.list_namespaced_service_account("bench")).items:
                break
            await asyncio.sleep(0.05)
        first, again = [], []
        for i in range(count):
            name = f"d{i}"
            began = time.monotonic()
            await apps.create_namespaced_deployment("bench", deployment(name))
            await wait_rolled_out(apps, "bench", name, 1)
            first.append(time.monotonic() - began)
            began = time.monotonic()
            patch = {"spec": {"template": {"metadata": {"annotations": {"at": str(i)}}}}}
            await apps.patch_namespaced_deployment(name, "bench", patch)
            await wait_rolled_out(apps, "bench", name, 2)
            again.append(time.monotonic() - began)
        return {"create_to_ready_s": summary(first), "template_change_to_rolled_s": summary(again)}
    finally:
        await api.close()


def readyz_round_trips(plane: KubeControlPlane, count: int = 50) -> list[float]:
    times = []
    token = plane.pki.token("admin")
    for _ in range(count):
        began = time.monotonic()
        status, _ = _get(
            plane.options.ports.apiserver,
            "/readyz",
            ca_cert=plane.pki.ca_cert,
            token=token,
        )
        assert status == 200
        times.append(time.monotonic() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=10)
    args = parser.parse_args()

    build = []
    for _ in range(5):
        began = time.monotonic()
        subprocess.run([str(DEFAULT_BUILD_DIR / "build.sh")], check=True, capture_output=True)
        build.append(time.monotonic() - began)

    fresh, reused, stopped = [], [], []
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kube-bench-") as tmp:
        for i in range(args.starts):
            plane = KubeControlPlane(Path(tmp) / f"run{i}", KubeOptions(ports=KubePorts.free()))
            began = time.monotonic()
            plane.start()
            fresh.append(time.monotonic() - began)
            try:
                began = time.monotonic()
                plane.start()
                reused.append(time.monotonic() - began)
                if i == 0:
                    report["rss_mib"] = {part.name: rss_mib(part.pid()) for part in plane.parts}
                    baseline = readyz_round_trips(plane)
                    report["baseline_readyz_round_trip_s"] = summary(baseline)
                    report["rollouts"] = asyncio.run(rollouts(plane, args.rollouts))
                    base = statistics.median(baseline)
                    report["rollout_p50_vs_readyz_p50"] = {
                        key: round(value["p50"] / base, 1)
                        for key, value in report["rollouts"].items()
                    }
            finally:
                began = time.monotonic()
                plane.stop()
                stopped.append(time.monotonic() - began)
    report = {
        "build_sh_cached_s": summary(build),
        "start_fresh_s": summary(fresh),
        "start_reused_s": summary(reused),
        "stop_s": summary(stopped),
        **report,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
