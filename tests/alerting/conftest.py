"""Fixtures of the alerting tests: a folder of one's own for definitions."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def definitions_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "alerts"
    directory.mkdir()
    return directory
