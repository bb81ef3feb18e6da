"""The one table of built-in actions: name -> how to build it from its dependencies.

Explicit on purpose (Alertmanager's ``receiver.go``): nothing is discovered by
scanning packages, and the names here are exactly the names of the parameter
table in ``params.py`` (a test checks both lists agree).

Actions come in families by the service they need (``FAMILIES``): only the Kubernetes
family needs a cluster client, so ``ActionDeps`` holds one only when it is given one,
and building the Redis, HTTP or notify family never touches Kubernetes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kubernetes_asyncio import client as k8s

from responder.actions.base import Action
from responder.actions.cache import CacheClear
from responder.actions.connections import ConnectionsReset
from responder.actions.deployments import DeploymentRestart, DeploymentRollback, DeploymentScale
from responder.actions.guards import Guards
from responder.actions.http import HttpClient, HttpRequest
from responder.actions.kube import Kube
from responder.actions.model_reload import ModelReload
from responder.actions.notify import Notify
from responder.actions.retry import RetryPolicy
from responder.actions.traffic import RegionFailback, RegionFailover
from responder.errors import ConfigError
from responder.settings import ActionsSettings

KUBERNETES, REDIS, HTTP, NOTIFY = "kubernetes", "redis", "http", "notify"

FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        KUBERNETES: (
            "deployment.restart",
            "deployment.scale",
            "deployment.rollback",
            "model.reload",
            "region.failover",
            "region.failback",
            "connections.reset",
        ),
        REDIS: ("cache.clear",),
        HTTP: ("http.request",),
        NOTIFY: ("notify",),
    }
)
"""Family -> its actions: what one service's settings make possible (or missing, impossible)."""

FAMILY_OF: Mapping[str, str] = MappingProxyType(
    {name: family for family, names in FAMILIES.items() for name in names}
)


@dataclass
class ActionDeps:
    """What actions need from the world, built once per process and closed at the end."""

    settings: ActionsSettings
    guards: Guards
    policy: RetryPolicy
    http: HttpClient
    cache: CacheClear
    kube_client: Kube | None = None
    """Only with a cluster client: the Kubernetes family's dependency."""

    @classmethod
    def build(cls, settings: ActionsSettings, api: k8s.ApiClient | None = None) -> ActionDeps:
        """Dependencies of every family; of the Kubernetes family only when ``api`` is given.

        Nothing here connects: the HTTP session and the Redis pools open on first use.
        """
        guards = Guards.from_settings(settings)
        policy = RetryPolicy(settings.retry_attempts, settings.retry_base_s, settings.retry_cap_s)
        return cls(
            settings=settings,
            guards=guards,
            policy=policy,
            http=HttpClient(settings),
            cache=CacheClear(settings, guards, policy),
            kube_client=None if api is None else Kube(api, settings, policy),
        )

    @property
    def kube(self) -> Kube:
        if self.kube_client is None:
            raise ConfigError("the Kubernetes actions were built without a cluster client")
        return self.kube_client

    async def close(self) -> None:
        await self.http.close()
        await self.cache.close()


def _restart(d: ActionDeps) -> DeploymentRestart:
    return DeploymentRestart(d.kube, d.guards)


ACTIONS: Mapping[str, Callable[[ActionDeps], Action]] = MappingProxyType(
    {
        "deployment.restart": _restart,
        "deployment.scale": lambda d: DeploymentScale(d.kube, d.guards),
        "deployment.rollback": lambda d: DeploymentRollback(d.kube, d.guards),
        "cache.clear": lambda d: d.cache,
        "model.reload": lambda d: ModelReload(d.kube, d.http, d.guards, d.policy, _restart(d)),
        "region.failover": lambda d: RegionFailover(d.kube, d.guards),
        "region.failback": lambda d: RegionFailback(d.kube, d.guards),
        "connections.reset": lambda d: ConnectionsReset(
            d.kube, d.http, d.settings, d.guards, d.policy, _restart(d)
        ),
        "http.request": lambda d: HttpRequest(d.http, d.settings, d.guards, d.policy),
        "notify": lambda d: Notify(),
    }
)
"""Action name -> factory. The names match ``params.ACTION_PARAMS``."""


def build_actions(deps: ActionDeps, families: Iterable[str] | None = None) -> dict[str, Action]:
    """The built-in actions of ``families`` (default: all), ready to run."""
    wanted = set(FAMILIES if families is None else families)
    return {name: make(deps) for name, make in ACTIONS.items() if FAMILY_OF[name] in wanted}
