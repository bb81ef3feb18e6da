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
from typing import TYPE_CHECKING

from responder.actions.base import Action
from responder.actions.cache import CacheClear
from responder.actions.guards import Guards
from responder.actions.http import HttpClient, HttpRequest
from responder.actions.notify import Notify
from responder.actions.retry import RetryPolicy
from responder.errors import ConfigError
from responder.settings import ActionsSettings

if TYPE_CHECKING:
    from kubernetes_asyncio import client as k8s

    from responder.actions.kube import Kube

# The Kubernetes family's modules (and kubernetes_asyncio, some 50 MiB of API models) are
# imported by its factories, when a runbook that uses the family is first run: a worker
# whose runbooks only clear caches never loads them.

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
            kube_client=None if api is None else _kube(api, settings, policy),
        )

    @property
    def kube(self) -> Kube:
        if self.kube_client is None:
            raise ConfigError("the Kubernetes actions were built without a cluster client")
        return self.kube_client

    async def close(self) -> None:
        await self.http.close()
        await self.cache.close()


def _kube(api: k8s.ApiClient, settings: ActionsSettings, policy: RetryPolicy) -> Kube:
    from responder.actions.kube import Kube

    return Kube(api, settings, policy)


def _restart(d: ActionDeps) -> Action:
    from responder.actions.deployments import DeploymentRestart

    return DeploymentRestart(d.kube, d.guards)


def _scale(d: ActionDeps) -> Action:
    from responder.actions.deployments import DeploymentScale

    return DeploymentScale(d.kube, d.guards)


def _rollback(d: ActionDeps) -> Action:
    from responder.actions.deployments import DeploymentRollback

    return DeploymentRollback(d.kube, d.guards)


def _model_reload(d: ActionDeps) -> Action:
    from responder.actions.deployments import DeploymentRestart
    from responder.actions.model_reload import ModelReload

    return ModelReload(d.kube, d.http, d.guards, d.policy, DeploymentRestart(d.kube, d.guards))


def _failover(d: ActionDeps) -> Action:
    from responder.actions.traffic import RegionFailover

    return RegionFailover(d.kube, d.guards)


def _failback(d: ActionDeps) -> Action:
    from responder.actions.traffic import RegionFailback

    return RegionFailback(d.kube, d.guards)


def _connections_reset(d: ActionDeps) -> Action:
    from responder.actions.connections import ConnectionsReset
    from responder.actions.deployments import DeploymentRestart

    return ConnectionsReset(
        d.kube, d.http, d.settings, d.guards, d.policy, DeploymentRestart(d.kube, d.guards)
    )


ACTIONS: Mapping[str, Callable[[ActionDeps], Action]] = MappingProxyType(
    {
        "deployment.restart": _restart,
        "deployment.scale": _scale,
        "deployment.rollback": _rollback,
        "cache.clear": lambda d: d.cache,
        "model.reload": _model_reload,
        "region.failover": _failover,
        "region.failback": _failback,
        "connections.reset": _connections_reset,
        "http.request": lambda d: HttpRequest(d.http, d.settings, d.guards, d.policy),
        "notify": lambda d: Notify(),
    }
)
"""Action name -> factory. The names match ``params.ACTION_PARAMS``."""


def build_actions(deps: ActionDeps, families: Iterable[str] | None = None) -> dict[str, Action]:
    """The built-in actions of ``families`` (default: all), ready to run."""
    wanted = set(FAMILIES if families is None else families)
    return {name: make(deps) for name, make in ACTIONS.items() if FAMILY_OF[name] in wanted}
