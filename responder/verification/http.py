"""HTTP checks: GET a path on an allow-listed base URL and expect one of the statuses.

The runbook names the base (``actions.http_base_urls``), never a host, so a check cannot
be pointed anywhere else; redirects are not followed and no proxy from the environment
is used, for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from responder.verification.base import Verdict


def base_url(base_urls: Mapping[str, str], base: str, path: str) -> str | None:
    """``path`` under the allow-listed base named ``base``; None when no such base is set."""
    root = base_urls.get(base)
    if root is None:
        return None
    return root.rstrip("/") + "/" + path.lstrip("/")


@dataclass(frozen=True, slots=True)
class HTTPGet:
    base: str
    """Name of an entry of the allow-list."""
    path: str
    expect: frozenset[int]


class HTTPChecker:
    """Runs ``HTTPGet`` checks with one session (opened on first use)."""

    def __init__(self, base_urls: Mapping[str, str], timeout_s: float) -> None:
        self.base_urls = base_urls
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, check: HTTPGet) -> Verdict:
        url = base_url(self.base_urls, check.base, check.path)
        if url is None:
            return Verdict(False, f"http base {check.base!r} is not configured")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=False)
        async with self._session.get(
            url, timeout=aiohttp.ClientTimeout(total=self.timeout_s), allow_redirects=False
        ) as response:
            return Verdict(response.status in check.expect, f"HTTP {response.status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
