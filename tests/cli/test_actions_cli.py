"""``responder actions list|run`` from the shell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from click.testing import CliRunner

from responder.actions.params import ACTION_PARAMS
from responder.cli import main


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures structlog for the process; put the defaults back for later tests."""
    yield
    structlog.reset_defaults()


def test_list_names_every_action_and_its_parameters() -> None:
    out = CliRunner().invoke(main, ["--log-format", "console", "actions", "list"])
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert [line.split()[0] for line in lines] == list(ACTION_PARAMS)
    assert "factor, replicas, min, max, hpa" in out.output


def test_run_refuses_a_crafted_target_and_bad_parameters() -> None:
    runner = CliRunner()
    crafted = runner.invoke(
        main,
        ["actions", "run", "cache.clear", "payments/x;rm -rf /", "--with", '{"pattern": "a:*"}'],
    )
    assert crafted.exit_code == 2
    assert "RFC 1123" in crafted.output
    bad = runner.invoke(
        main,
        [
            "actions",
            "run",
            "deployment.scale",
            "payments/web",
            "--with",
            '{"factor": 2, "replicas": 3}',
        ],
    )
    assert bad.exit_code == 2
    assert "exactly one of factor or replicas" in bad.output


def test_run_is_a_dry_run_refused_outside_the_allowed_namespaces() -> None:
    out = CliRunner().invoke(
        main, ["actions", "run", "notify", "payments/web", "--with", '{"message": "hi"}']
    )
    assert out.exit_code == 0, out.output
    assert '"dry_run": true' in out.output
    refused = CliRunner().invoke(
        main, ["actions", "run", "cache.clear", "payments/web", "--with", '{"pattern": "a:*"}']
    )
    assert refused.exit_code == 1
    assert "not in actions.allowed_namespaces" in refused.output
