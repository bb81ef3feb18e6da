"""The demo's engine simulator against the real control plane: the stuck-model fault lasts
while the pods that ran when it began still run, and ends only when the responder's real
``deployment.restart`` has replaced them in the apiserver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s

from k8s.support import eventually
from responder.actions.base import Action, ActionContext
from responder.actions.params import DeploymentRestartParams
from responder.models.target import Target
from responder_dev.demo.simulator import (
    HEALTHY_CONFIDENCE,
    STUCK_CONFIDENCE,
    Simulator,
    call_probe,
    read_faults,
)
from responder_dev.stack.kube import KubeControlPlane


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

            async def two_pods() -> set[str] | None:
                pods = set((await read_faults(session, base))["pods"])
                return pods if len(pods) == 2 else None

            before = await eventually(two_pods, timeout_s=30, what="the simulator sees 2 pods")
            async with session.post(base + "/v1/faults/stuck_model") as r:
                assert r.status == 200, await r.text()
            body, _ = await call_probe(session, base)
            assert body["confidence"] == STUCK_CONFIDENCE
            assert body["success"] is True  # it answers, with poor quality

            # A change that replaces no pod (a label on the Deployment) does not help.
            await k8s.AppsV1Api(admin_api).patch_namespaced_deployment(
                "harmony-engine", namespace, {"metadata": {"labels": {"touched": "yes"}}}
            )
            for _ in range(5):
                assert (await read_faults(session, base))["stuck_model"] is True
                await asyncio.sleep(0.2)  # watching that nothing changes, not waiting for it

            result = await actions["deployment.restart"].run(
                make_ctx(),
                Target(namespace=namespace, name="harmony-engine"),
                DeploymentRestartParams(wait=True),
            )
            assert result.changed

            async def healed() -> set[str] | None:
                seen = await read_faults(session, base)
                return None if seen["stuck_model"] else set(seen["pods"])

            after = await eventually(healed, timeout_s=60, what="fresh models in new pods")
            assert after
            assert not (after & before)  # new pods, none of the old ones
            body, _ = await call_probe(session, base)
            assert body["confidence"] == HEALTHY_CONFIDENCE
    finally:
        await sim.stop()
