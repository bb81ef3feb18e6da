"""Errors that tell the caller what to do next.

Every failure the responder raises on purpose is one of these three, so a
retry loop or an HTTP handler can decide without string matching.
"""

from __future__ import annotations


class ResponderError(Exception):
    """Base of every error the responder raises on purpose."""


class ConfigError(ResponderError):
    """The configuration or a runbook is wrong: fix it, retrying will not help."""


class PermanentError(ResponderError):
    """The operation cannot succeed as asked: give up and report."""


class TemporaryError(ResponderError):
    """The operation may succeed later: retry after ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay
