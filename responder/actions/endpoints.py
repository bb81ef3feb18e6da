"""Call an HTTP endpoint on every ready pod behind a Service, as the cluster lists them.

``model.reload`` and ``connections.reset`` reach pods directly (a reload must
hit each replica, not whichever one the Service picks), so addresses come from
the Service's EndpointSlices. Those addresses are data from the cluster: each
one is checked against ``actions.allowed_endpoint_networks`` before anything is
sent, and the whole action is refused if one is outside, so a poisoned
EndpointSlice cannot aim the responder at an arbitrary host.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from responder.actions.base import (
    LAST_ACTION_ANNOTATION,
    ActionContext,
    ActionResult,
    repeat_result,
)
from responder.actions.deployments import DeploymentRestart
from responder.actions.guards import Guards
from responder.actions.http import HttpClient, gather_limited
from responder.actions.kube import FROM_CACHE, MERGE_PATCH, Kube, applied, record_value
from responder.actions.params import DeploymentRestartParams
from responder.actions.retry import NotFoundError, Operation, RetryPolicy, with_retries
from responder.errors import PermanentError, ResponderError
from responder.models.target import Target

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


async def ready_addresses(
    kube: Kube, guards: Guards, ctx: ActionContext, target: Target
) -> list[str]:
    """Addresses of the ready pods behind Service ``target.name`` (deduplicated, sorted), each
    checked against ``actions.allowed_endpoint_networks`` (so a dry run refuses them too).

    From the Service's EndpointSlices, or, with ``actions.endpoint_source: pods``, from the
    Ready Pods its selector matches (see the setting for why both exist).
    """
    if kube.settings.endpoint_source == "pods":
        addresses = await _ready_pod_addresses(kube, ctx, target)
    else:
        addresses = await _ready_slice_addresses(kube, ctx, target)
    for address in addresses:
        guards.check_endpoint(address)
    return addresses


async def _ready_slice_addresses(kube: Kube, ctx: ActionContext, target: Target) -> list[str]:
    listing = await kube.call_retrying(
        ctx,
        Operation("list", "endpointslices.discovery.k8s.io", target.namespace),
        kube.discovery.list_namespaced_endpoint_slice,
        target.namespace,
        label_selector=f"{SERVICE_NAME_LABEL}={target.name}",
        **FROM_CACHE,
    )
    found: set[str] = set()
    for slice_ in listing.get("items") or []:
        for endpoint in slice_.get("endpoints") or []:
            # Kubernetes: a nil "ready" condition means ready.
            if (endpoint.get("conditions") or {}).get("ready", True) is False:
                continue
            found.update(endpoint.get("addresses") or [])
    return sorted(found)


async def _ready_pod_addresses(kube: Kube, ctx: ActionContext, target: Target) -> list[str]:
    service = await read_service(kube, ctx, target)
    selector: dict[str, str] = service["spec"].get("selector") or {}
    if not selector:
        raise PermanentError(
            f"service {target.namespace}/{target.name} has no selector to find its pods"
        )
    pods = await kube.call_retrying(
        ctx,
        Operation("list", "pods", target.namespace),
        kube.core.list_namespaced_pod,
        target.namespace,
        label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        **FROM_CACHE,
    )
    found: set[str] = set()
    for pod in pods.get("items") or []:
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if ready and not pod["metadata"].get("deletionTimestamp") and status.get("podIP"):
            found.add(status["podIP"])
    return sorted(found)


def endpoint_url(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


async def read_service(kube: Kube, ctx: ActionContext, target: Target) -> dict[str, Any]:
    """The Service ``target.name`` (its last-action annotation says whether a key already ran)."""
    return await kube.call_retrying(
        ctx,
        Operation("get", "services", target.namespace, target.name),
        kube.core.read_namespaced_service,
        target.name,
        target.namespace,
    )


async def record_on_service(kube: Kube, ctx: ActionContext, target: Target, record: str) -> None:
    """Write the last-action annotation on the Service the action worked through."""
    body = {"metadata": {"annotations": {LAST_ACTION_ANNOTATION: record}}}
    await kube.call_retrying(
        ctx,
        Operation("patch", "services", target.namespace, target.name),
        kube.core.patch_namespaced_service,
        target.name,
        target.namespace,
        body,
        _content_type=MERGE_PATCH,
    )


async def earlier_record(
    kube: Kube, ctx: ActionContext, target: Target, key: str
) -> dict[str, Any] | None:
    """The record of ``key`` if it already ran: on the Service (HTTP path) or the Deployment
    of the same name (restart path, fallback or ``restart: true``)."""
    service = target.model_copy(update={"kind": "service"})
    deployment = target.model_copy(update={"kind": "deployment"})
    reads: tuple[Callable[[], Awaitable[dict[str, Any]]], ...] = (
        lambda: read_service(kube, ctx, service),
        lambda: kube.call_retrying(
            ctx,
            Operation("get", "deployments.apps", target.namespace, target.name),
            kube.apps.read_namespaced_deployment,
            deployment.name,
            deployment.namespace,
        ),
    )
    for read in reads:
        try:
            found = applied(await read(), key)
        except NotFoundError:
            continue
        if found is not None:
            return found
    return None


class EndpointAction:
    """What ``model.reload`` and ``connections.reset`` share: the Service's ready pods, a POST
    to each, the record of the key on the Service, and a rolling restart of the Deployment
    of the same name when the endpoints are not the way (or not enough)."""

    name = ""

    def __init__(
        self,
        kube: Kube,
        http: HttpClient,
        guards: Guards,
        policy: RetryPolicy,
        restart: DeploymentRestart,
    ) -> None:
        self._kube = kube
        self._http = http
        self._guards = guards
        self._policy = policy
        self._restart = restart

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        self._guards.check_target(target)
        return await earlier_record(self._kube, ctx, target, key) is not None

    async def _repeat(
        self, ctx: ActionContext, target: Target, started: float
    ) -> ActionResult | None:
        """The earlier result when this key already ran (on the Service or the Deployment)."""
        found = await earlier_record(self._kube, ctx, target, ctx.key)
        return None if found is None else repeat_result(found, ctx, started)

    async def _addresses(self, ctx: ActionContext, service: Target) -> list[str]:
        return await ready_addresses(self._kube, self._guards, ctx, service)

    async def _post(
        self,
        ctx: ActionContext,
        addresses: list[str],
        *,
        port: int,
        path: str,
        body: Any,
        concurrency: int,
    ) -> list[dict[str, Any]]:
        """POST ``body`` to ``path`` on each address, ``concurrency`` at a time.

        Every address is checked against the allowed networks again here, the last step
        before the network, before any request is sent.

        Returns one record per address: its URL, status or error, and tries.
        """
        for address in addresses:
            self._guards.check_endpoint(address)
        answers = await gather_limited(
            concurrency,
            [self._post_one(ctx, a, endpoint_url(a, port, path), body) for a in addresses],
        )
        records: list[dict[str, Any]] = []
        for address, answer in zip(addresses, answers, strict=True):
            if isinstance(answer, BaseException):
                records.append({"address": address, "ok": False, "error": repr(answer)})
            else:
                records.append(answer)
        return records

    async def _post_one(
        self, ctx: ActionContext, address: str, url: str, body: Any
    ) -> dict[str, Any]:
        tries = 0

        async def once() -> tuple[int, str]:
            nonlocal tries
            tries += 1
            return await self._http.send(
                ctx,
                "POST",
                url,
                headers={"Idempotency-Key": ctx.key},
                json_body=body,
                expect=frozenset(range(200, 300)),
                what=url,
            )

        try:
            status, text = await with_retries(ctx, once, policy=self._policy, what=f"POST {url}")
        except ResponderError as exc:
            return {"address": address, "url": url, "ok": False, "error": str(exc), "tries": tries}
        return {
            "address": address,
            "url": url,
            "ok": True,
            "status": status,
            "body": text[:200],
            "tries": tries,
        }

    async def _done(
        self, ctx: ActionContext, service: Target, result: ActionResult, **logged: Any
    ) -> ActionResult:
        """Record the key on the Service and log: the HTTP path succeeded."""
        await record_on_service(self._kube, ctx, service, record_value(result))
        ctx.logger.info("action.done", action=self.name, target=str(service), **logged)
        return result

    async def _rolling_restart(self, ctx: ActionContext, target: Target) -> ActionResult:
        """Restart the Deployment named like the target and wait for the rollout."""
        return await self._restart.run(
            ctx,
            target.model_copy(update={"kind": "deployment"}),
            DeploymentRestartParams(wait=True),
        )
