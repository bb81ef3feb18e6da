"""The one table of built-in actions: name -> how to build it from its dependencies.

Explicit on purpose (Alertmanager's ``receiver.go``): nothing is discovered by
scanning packages, and the names here are exactly the names of the parameter
table in ``params.py`` (a test checks both lists agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from responder.settings import ActionsSettings


@dataclass
class ActionDeps:
    """What actions need from the world, built once per process and closed at the end."""

    settings: ActionsSettings
    guards: Guards
    policy: RetryPolicy
    kube: Kube
    http: HttpClient
    cache: CacheClear

    @classmethod
    def build(cls, settings: ActionsSettings, api: k8s.ApiClient) -> ActionDeps:
        guards = Guards.from_settings(settings)
        policy = RetryPolicy(settings.retry_attempts, settings.retry_base_s, settings.retry_cap_s)
        return cls(
            settings=settings,
            guards=guards,
            policy=policy,
            kube=Kube(api, settings, policy),
            http=HttpClient(settings),
            cache=CacheClear(settings, guards, policy),
        )

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


def build_actions(deps: ActionDeps) -> dict[str, Action]:
    """Every built-in action, ready to run."""
    return {name: make(deps) for name, make in ACTIONS.items()}
