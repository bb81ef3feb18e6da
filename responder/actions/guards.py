"""Guard rails every action checks before it makes a single call.

Kept apart from the actions so the rule is one function each and testable
alone: which namespaces may be touched, how few and how many replicas a
service may have, which addresses read from the cluster may be called, and
which base URLs outbound HTTP may reach. The target's names were already
validated as RFC 1123 when the ``Target`` was built.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from responder.errors import ConfigError, PermanentError
from responder.models.target import Target, check_dns_label, check_dns_subdomain
from responder.settings import ActionsSettings


@dataclass(frozen=True)
class Guards:
    """The guard rails, built once from ``ActionsSettings``."""

    allowed_namespaces: tuple[str, ...]
    min_replicas: int
    max_replicas: int
    endpoint_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    http_base_urls: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: ActionsSettings) -> Guards:
        if settings.min_replicas > settings.max_replicas:
            raise ConfigError(
                f"actions.min_replicas ({settings.min_replicas}) is above "
                f"actions.max_replicas ({settings.max_replicas})"
            )
        try:
            networks = tuple(ipaddress.ip_network(n) for n in settings.allowed_endpoint_networks)
        except ValueError as exc:
            raise ConfigError(f"actions.allowed_endpoint_networks: {exc}") from exc
        for name, base in settings.http_base_urls.items():
            parts = urlsplit(base)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.username
                or parts.query
                or parts.fragment
            ):
                raise ConfigError(
                    f"actions.http_base_urls[{name}]: {base!r} is not a plain http(s) URL"
                )
        return cls(
            allowed_namespaces=tuple(settings.allowed_namespaces),
            min_replicas=settings.min_replicas,
            max_replicas=settings.max_replicas,
            endpoint_networks=networks,
            http_base_urls=MappingProxyType(
                {name: base.rstrip("/") for name, base in settings.http_base_urls.items()}
            ),
        )

    def check_target(self, target: Target) -> None:
        """Refuse a target whose names are not RFC 1123 or whose namespace is not allowed.

        ``Target`` validates when built; the names are checked again here, the last step
        before any call, because a model can be built without validation (``model_construct``).
        """
        try:
            check_dns_label(target.namespace, what="namespace")
            check_dns_subdomain(target.name, what="name")
        except ValueError as exc:
            raise PermanentError(f"refusing target: {exc}") from exc
        for allowed in self.allowed_namespaces:
            if allowed.endswith("*"):
                if target.namespace.startswith(allowed[:-1]):
                    return
            elif target.namespace == allowed:
                return
        raise PermanentError(
            f"namespace {target.namespace} is not in actions.allowed_namespaces; refusing to touch {target}"
        )

    def clamp_replicas(
        self, wanted: int, *, low: int | None = None, high: int | None = None
    ) -> int:
        """``wanted`` within the runbook's [low, high] and then within the global floor and ceiling."""
        value = wanted
        if low is not None:
            value = max(value, low)
        if high is not None:
            value = min(value, high)
        return max(self.min_replicas, min(self.max_replicas, value))

    def check_endpoint(self, address: str) -> None:
        """Refuse an address from the cluster that is outside ``actions.allowed_endpoint_networks``."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise PermanentError(f"endpoint address {address[:80]!r} is not an IP address") from exc
        if not any(ip in net for net in self.endpoint_networks):
            raise PermanentError(
                f"endpoint {ip} is outside actions.allowed_endpoint_networks "
                f"({', '.join(map(str, self.endpoint_networks))}); refusing to call it"
            )

    def url_for(self, base: str, path: str) -> str:
        """The URL for ``path`` under the allow-listed base named ``base``, or raise.

        The path was validated when the runbook loaded (no scheme, host or ``..``); it
        is checked again here because this is the last line before the network, and
        the joined URL must still have the base's scheme, host and port.
        """
        root = self.http_base_urls.get(base)
        if root is None:
            raise PermanentError(f"no base URL named {base!r} in actions.http_base_urls")
        if (
            not path.startswith("/")
            or path.startswith("//")
            or any(ord(c) < 33 or ord(c) > 126 for c in path)
        ):
            raise PermanentError(f"path {path[:80]!r} is not a plain absolute path")
        if ".." in urlsplit(path).path.split("/"):
            raise PermanentError(f"path {path[:80]!r} has '..' segments")
        url = root + path
        joined, allowed = urlsplit(url), urlsplit(root)
        if (joined.scheme, joined.hostname, joined.port) != (
            allowed.scheme,
            allowed.hostname,
            allowed.port,
        ):
            raise PermanentError(f"URL {url[:120]!r} leaves base {base!r}")
        return url
