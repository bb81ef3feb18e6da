"""Config for the local servers lives in ``deploy/``; this fills it in for one instance.

Plain-text configs (Kafka, Redis) have dollar-brace fields (``string.Template``); a field
left unfilled is an error, not an empty string. YAML configs (Prometheus, Alertmanager)
are valid as they stand and are loaded, adjusted and written out again. Either way a
reader sees the real config in one place.
"""

from __future__ import annotations

import io
import ipaddress
import os
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from responder.errors import ConfigError

# The package runs from the checkout (editable install of dev/), next to deploy/:
# <checkout>/dev/responder_dev/stack/templates.py.
DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy"


def render(relative: str, **fields: object) -> str:
    """Fill ``deploy/<relative>`` with ``fields``."""
    path = DEPLOY_DIR / relative
    try:
        template = string.Template(path.read_text())
    except OSError as exc:
        raise ConfigError(f"stack template {path} is missing: {exc}") from exc
    try:
        return template.substitute({key: str(value) for key, value in fields.items()})
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"stack template {path}: {exc}") from exc


def load_yaml(relative: str) -> dict[str, Any]:
    """``deploy/<relative>`` as data, to adjust before writing it out with ``dump_yaml``."""
    path = DEPLOY_DIR / relative
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"stack config {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"stack config {path} is not a mapping")
    return data


def dump_yaml(data: Mapping[str, Any], path: Path, *, private: bool = False) -> None:
    """Write ``data`` as YAML, atomically (a reload never reads half a file); 0600 if ``private``."""
    buffer = io.StringIO()
    YAML(typ="safe", pure=True).dump(dict(data), buffer)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(buffer.getvalue())
    tmp.replace(path)


def replace_config(
    data: Mapping[str, Any],
    path: Path,
    *,
    reload: Callable[[], None] | None,
    private: bool = False,
) -> None:
    """Write a server's new config and have it reloaded; if it rejects the new one, the
    old file is put back, so its next restart still finds the config it runs with."""
    previous = path.read_bytes() if path.exists() else None
    dump_yaml(data, path, private=private)
    if reload is None:
        return
    try:
        reload()
    except ConfigError:
        if previous is not None:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(previous)
            tmp.replace(path)
        raise


def require_loopback(address: str, *, what: str) -> None:
    """Refuse any address off 127.0.0.0/8 and ::1: the local stack talks to this machine only."""
    host = urlsplit(address if "//" in address else f"//{address}").hostname or ""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"{what} {address!r} is not on the loopback interface (127.0.0.1)")
