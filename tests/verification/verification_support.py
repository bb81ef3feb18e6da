"""Helpers of the verification tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HealthServer:
    """``/status/<n>`` answers n; ``/moved`` redirects to ``/status/200``; every path is counted."""

    url: str = ""
    hits: list[str] = field(default_factory=list)
