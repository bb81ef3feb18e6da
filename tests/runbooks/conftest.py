"""Fixtures for the runbook language: the repository's runbooks and a tiny valid runbook to vary."""

from __future__ import annotations

from pathlib import Path

import pytest
from runbook_support import RULES_DIR, SEED_DIR


@pytest.fixture
def seed_dir() -> Path:
    return SEED_DIR


@pytest.fixture
def rules_dir() -> Path:
    return RULES_DIR
