"""Config templates for the local servers live in ``deploy/``; this renders them.

They are plain files with ``${name}`` fields (``string.Template``) so a reader sees the
real config in one place; a field left unfilled is an error, not an empty string.
"""

from __future__ import annotations

import string
from pathlib import Path

from responder.errors import ConfigError

# The package runs from the checkout (editable install), next to deploy/.
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"


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
