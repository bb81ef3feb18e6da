"""The production action table: every built-in action by name, each family built when needed.

A worker whose runbooks only clear caches must start and act without a cluster, and one
whose runbooks restart deployments must refuse to start when it has no usable cluster
credentials, not fail every step at run time. So the catalogue knows which service each
action family needs (``registry.FAMILIES``), answers "what setting is missing for this
step?" before anything runs (``missing``, used when runbooks are loaded), and builds a
family's clients only when one of its actions is first run: the Redis and HTTP families
never touch Kubernetes, and the Kubernetes family loads its configuration once (in-cluster
service account, else the kubeconfig) and makes its API client inside the running loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from redis.connection import parse_url

from responder.actions.base import Action, ActionContext, ActionResult
from responder.actions.params import HTTPRequestParams
from responder.actions.registry import (
    ACTIONS,
    FAMILY_OF,
    HTTP,
    KUBERNETES,
    REDIS,
    ActionDeps,
    build_actions,
)
from responder.errors import ConfigError
from responder.models.target import Target
from responder.settings import ActionsSettings

if TYPE_CHECKING:
    from kubernetes_asyncio import client as k8s

__all__ = ["ActionCatalogue", "load_kube_configuration"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

KUBE_SETTING = (
    "KUBECONFIG (a kubeconfig file; ~/.kube/config when unset), or run in a pod with a "
    "service account (in-cluster config)"
)


async def load_kube_configuration(config_file: str | None = None) -> k8s.Configuration:
    """A client configuration: in-cluster when in a pod (and no file named), else the kubeconfig.

    Raises ``ConfigError`` saying what was tried and what to set.
    """
    from kubernetes_asyncio import client as k8s
    from kubernetes_asyncio import config as k8s_config

    configuration = k8s.Configuration()
    in_cluster = "not in a pod (KUBERNETES_SERVICE_HOST unset)"
    if config_file is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException as exc:
            in_cluster = f"in-cluster config unusable: {exc}"
        else:
            return configuration
    where = config_file or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        await k8s_config.load_kube_config(
            config_file=config_file, client_configuration=configuration, persist_config=False
        )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError(
            f"no usable Kubernetes configuration ({in_cluster}; kubeconfig {where}: {exc}): "
            f"set {KUBE_SETTING}"
        ) from exc
    return configuration


def _run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, inside or outside an event loop."""
    with ThreadPoolExecutor(1, thread_name_prefix="kube-config") as pool:
        return pool.submit(asyncio.run, coro).result()


class ActionCatalogue(Mapping[str, Action]):
    """Every built-in action; a family's clients are made on the first run of one of its actions.

    Also the remediation engine's ``ActionProvider``: ``await catalogue()`` is the catalogue.
    """

    def __init__(self, settings: ActionsSettings, *, kubeconfig: str | None = None) -> None:
        self._settings = settings
        self._kubeconfig = kubeconfig
        self._deps = ActionDeps.build(settings)
        self._kube_configuration: k8s.Configuration | None = None
        self._api: k8s.ApiClient | None = None
        self._built: dict[str, Action] = {}
        self._families: set[str] = set()
        self._lock = asyncio.Lock()  # two first runs at once build a family once

    # --- the table -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Action:
        if name not in ACTIONS:
            raise KeyError(name)
        return self._built.get(name) or _OnFirstRun(name, self)

    def __iter__(self) -> Iterator[str]:
        return iter(ACTIONS)

    def __len__(self) -> int:
        return len(ACTIONS)

    async def __call__(self) -> Mapping[str, Action]:
        return self

    # --- what a step needs ---------------------------------------------------------------------

    def missing(self, action: str, params: object = None) -> str | None:
        """What ``action`` (with ``params``) needs that the settings lack, as "needs …: set …".

        None when it can run. Loads the Kubernetes configuration (once) for that family.
        """
        family = FAMILY_OF.get(action)
        if family == KUBERNETES:
            return self.missing_kubernetes()
        if family == REDIS:
            url = self._settings.redis_urls.get("default")
            if url is None:
                return "needs Redis: set RESPONDER_ACTIONS__REDIS_URLS with a 'default' entry"
            try:
                parse_url(url)  # type: ignore[no-untyped-call]
            except ValueError as exc:
                return f"needs Redis: RESPONDER_ACTIONS__REDIS_URLS['default'] is invalid ({exc})"
        elif (
            family == HTTP
            and isinstance(params, HTTPRequestParams)
            and params.base not in self._settings.http_base_urls
        ):
            return (
                f"needs the HTTP base {params.base!r}: set RESPONDER_ACTIONS__HTTP_BASE_URLS "
                f"with a {params.base!r} entry"
            )
        return None

    def missing_kubernetes(self) -> str | None:
        """None when pods can be read from the cluster (a probe of the target's pods needs it)."""
        try:
            self.require_kubernetes()
        except ConfigError as exc:
            return f"needs Kubernetes: {exc}"
        return None

    def require_kubernetes(self) -> k8s.Configuration:
        """The Kubernetes configuration, loaded on first call; ``ConfigError`` if there is none."""
        if self._kube_configuration is None:
            self._kube_configuration = _run_blocking(load_kube_configuration(self._kubeconfig))
        return self._kube_configuration

    # --- building ----------------------------------------------------------------------------

    async def build(self, name: str) -> Action:
        """The real action ``name``, its family built now if this is its first run."""
        await self._ensure(FAMILY_OF[name])
        return self._built[name]

    async def _ensure(self, family: str) -> None:
        async with self._lock:
            if family not in self._families:
                if family == KUBERNETES:
                    from kubernetes_asyncio import client as k8s

                    from responder.actions.kube import Kube

                    if self._kube_configuration is None:
                        self._kube_configuration = await load_kube_configuration(self._kubeconfig)
                    self._api = k8s.ApiClient(self._kube_configuration)
                    self._deps.kube_client = Kube(self._api, self._settings, self._deps.policy)
                self._built.update(build_actions(self._deps, [family]))
                self._families.add(family)

    # --- what verifications read from the cluster ------------------------------------------

    async def pod_urls(self, service: Target, port: int, path: str) -> list[str]:
        """The URL of ``path`` on ``port`` of every ready pod behind Service ``service``.

        A generation probe's ``PodURLs``: the pods ``model.reload`` calls, found and checked
        the same way (namespace allow-list, ``actions.endpoint_source``, every address inside
        ``actions.allowed_endpoint_networks``), with the same Kubernetes client.
        """
        from responder.actions.endpoints import endpoint_url, ready_addresses

        await self._ensure(KUBERNETES)
        guards = self._deps.guards
        guards.check_target(service)
        ctx = ActionContext(incident_id="probe", step=0, logger=log)
        addresses = await ready_addresses(self._deps.kube, guards, ctx, service)
        return [endpoint_url(address, port, path) for address in addresses]

    async def close(self) -> None:
        await self._deps.close()
        if self._api is not None:
            await self._api.close()


class _OnFirstRun:
    """Stands in for an action whose family is not built yet; builds it on first use."""

    def __init__(self, name: str, catalogue: ActionCatalogue) -> None:
        self.name = name
        self._catalogue = catalogue

    async def run(self, ctx: ActionContext, target: Target, params: Any) -> ActionResult:
        return await (await self._catalogue.build(self.name)).run(ctx, target, params)

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        return await (await self._catalogue.build(self.name)).reconcile(ctx, target, key)
