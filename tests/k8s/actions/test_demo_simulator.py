"""The demo's engine simulator against the real control plane: the stuck-model fault lasts
while the pods that ran when it began still run, and ends only when the responder's real
``deployment.restart`` has replaced them in the apiserver."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s

from responder.actions.base import Action, ActionContext
from responder.actions.params import DeploymentRestartParams
from responder.models.target import Target
from responder_dev.demo.simulator import HEALTHY_CONFIDENCE, STUCK_CONFIDENCE, Simulator
from responder_dev.stack.kube import KubeControlPlane

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dev" / "demo"))
from sim_support import faults, probe, until  # noqa: E402 - the simulator tests' helpers


async def test_stuck_model_clears_only_when_the_pods_are_replaced(
    control_plane: KubeControlPlane,
    admin_api: k8s.ApiClient,
    namespace: str,
    make_deployment: Callable[..., Any],
    actions: dict[str, Action],
    make_ctx: Callable[..., ActionContext],
    redis_server: Any,
) -> None:
    await make_deployment("harmony-engine")
    sim = Simulator(
        [("harmony", 0)],
        namespace=namespace,
        redis_url=str(redis_server.url),
        kubeconfig=Path(control_plane.admin_kubeconfig),
        tick_s=0.1,
    )
    await sim.start()
    base = sim.url("harmony")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def two_pods() -> bool:
                return len((await faults(session, base))["pods"]) == 2

            await until(two_pods, 30, "the simulator sees the deployment's pods")
            before = set((await faults(session, base))["pods"])
            async with session.post(base + "/v1/faults/stuck_model") as r:
                assert r.status == 200, await r.text()
            body, _ = await probe(session, base)
            assert body["confidence"] == STUCK_CONFIDENCE
            assert body["success"] is True  # it answers, with poor quality

            # A change that replaces no pod (a label on the Deployment) does not help.
            await k8s.AppsV1Api(admin_api).patch_namespaced_deployment(
                "harmony-engine", namespace, {"metadata": {"labels": {"touched": "yes"}}}
            )
            for _ in range(5):
                assert (await faults(session, base))["stuck_model"] is True
                await asyncio.sleep(0.2)  # watching that nothing changes, not waiting for it

            result = await actions["deployment.restart"].run(
                make_ctx(),
                Target(namespace=namespace, name="harmony-engine"),
                DeploymentRestartParams(wait=True),
            )
            assert result.changed

            async def healed() -> bool:
                return (await faults(session, base))["stuck_model"] is False

            await until(healed, 60, "the model is fresh once the pods are replaced")
            after = set((await faults(session, base))["pods"])
            assert after and not (after & before)  # new pods, none of the old ones
            body, _ = await probe(session, base)
            assert body["confidence"] == HEALTHY_CONFIDENCE
    finally:
        await sim.stop()
