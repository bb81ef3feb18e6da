"""The Kubernetes plumbing the Kubernetes actions share: calls with a timeout, errors classified,
objects as plain dicts, and the last-action annotation that makes each action idempotent.

Every call goes through ``Kube.call``: the step deadline caps its timeout, an
``ApiException`` becomes a ``PermanentError`` with a human sentence or a
``TemporaryError`` to retry (``retry.kube_error``), and the answer comes back
as the JSON dict the API sent, which is what results, patches and tests compare.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from responder.actions.base import LAST_ACTION_ANNOTATION, ActionContext, ActionResult
from responder.actions.retry import Operation, RetryPolicy, kube_error, with_retries
from responder.settings import ActionsSettings

Obj = dict[str, Any]
T = TypeVar("T")

#: List from the API server's watch cache instead of a consistent read: a consistent list
#: right after a write waits for the cache to catch up (measured 60-90 ms here, against
#: ~1.5 ms). Only for the lists of pod addresses (pods, EndpointSlices), where a view a
#: moment old is what any load balancer has too; the decisions that must be exact (which
#: HPA owns a Deployment, which ReplicaSet is the previous revision, reconcile) read
#: consistently.
FROM_CACHE: dict[str, str] = {"resource_version": "0"}

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class Kube:
    """API groups the actions use, over one ``ApiClient`` (whose identity RBAC judges)."""

    def __init__(self, api: k8s.ApiClient, settings: ActionsSettings, policy: RetryPolicy) -> None:
        self.api = api
        self.apps = k8s.AppsV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.discovery = k8s.DiscoveryV1Api(api)
        self.autoscaling = k8s.AutoscalingV2Api(api)
        self.custom = k8s.CustomObjectsApi(api)
        self.settings = settings
        self.policy = policy

    async def call(
        self,
        ctx: ActionContext,
        op: Operation,
        method: Callable[..., Awaitable[Any]],
        *args: Any,
        **kwargs: Any,
    ) -> Obj:
        """One API call bounded by the call timeout and the step deadline; errors classified."""
        timeout = ctx.remaining(self.settings.call_timeout_s)
        try:
            async with asyncio.timeout(timeout):
                answer = await method(*args, _request_timeout=timeout, **kwargs)
        except ApiException as exc:
            raise kube_error(exc, op, self.settings.kube_identity) from exc
        if isinstance(answer, dict):
            return answer
        serialised: Obj = self.api.sanitize_for_serialization(answer)
        return serialised

    async def call_retrying(
        self,
        ctx: ActionContext,
        op: Operation,
        method: Callable[..., Awaitable[Any]],
        *args: Any,
        **kwargs: Any,
    ) -> Obj:
        """``call`` with retries, for a call safe to repeat on its own (a read, an
        unconditional annotation write); never inside a ``retrying`` attempt."""
        return await self.retrying(
            ctx, op.describe(), lambda: self.call(ctx, op, method, *args, **kwargs)
        )

    async def retrying(
        self, ctx: ActionContext, what: str, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """Run a whole read-modify-write ``attempt`` with retries (409 re-reads)."""
        return await with_retries(ctx, attempt, policy=self.policy, what=what)


def annotations_of(obj: Obj) -> dict[str, str]:
    """The object's annotations (empty dict when it has none)."""
    found: dict[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
    return found


def last_action(obj: Obj) -> dict[str, Any] | None:
    """The recorded last action on ``obj``, or ``None`` (also when the annotation is not ours)."""
    raw = annotations_of(obj).get(LAST_ACTION_ANNOTATION)
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def applied(obj: Obj, key: str) -> dict[str, Any] | None:
    """The recorded result if ``key`` already took effect on ``obj`` (a finished record), else None."""
    record = last_action(obj)
    if record is None or record.get("key") != key or record.get("phase", "done") != "done":
        return None
    return record


def record_value(result: ActionResult, **extra: Any) -> str:
    """The JSON stored in the last-action annotation."""
    return json.dumps({**result.summary(), "phase": "done", **extra}, separators=(",", ":"))


def dry_run_arg(ctx: ActionContext) -> dict[str, str]:
    """``dryRun=All`` for the API when the step is a dry run (the API validates, nothing persists)."""
    return {"dry_run": "All"} if ctx.dry_run else {}


def rv(obj: Obj) -> str:
    """The object's resourceVersion: sent back in patches as an optimistic-concurrency precondition."""
    return str(obj["metadata"]["resourceVersion"])
