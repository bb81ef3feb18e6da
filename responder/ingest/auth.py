"""Who may post alerts: Alertmanager's bearer token or basic auth, compared in constant time.

An open receiver would let anyone open incidents and trigger remediation, so a request
without valid credentials is refused (401) before its body is read.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from responder.settings import IngestSettings


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authorized(header: str | None, settings: IngestSettings) -> bool:
    """Whether an ``Authorization`` header carries the configured bearer token or basic auth."""
    if (
        settings.allow_anonymous
        and settings.bearer_token is None
        and settings.basic_username is None
    ):
        return True
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    scheme = scheme.lower()
    if scheme == "bearer" and settings.bearer_token is not None:
        return _equal(credentials, settings.bearer_token.get_secret_value())
    if scheme == "basic" and settings.basic_username is not None and settings.basic_password:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        # Both comparisons always run, so timing does not tell which half was wrong.
        user_ok = _equal(user, settings.basic_username)
        password_ok = _equal(password, settings.basic_password.get_secret_value())
        return bool(sep) and user_ok and password_ok
    return False
