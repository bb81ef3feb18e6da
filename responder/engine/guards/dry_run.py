"""Dry-run: global (settings) or per runbook; either one makes every action of the incident a dry run.

A dry-run action reports what it would change and changes nothing, so it does not count
toward the cooldown or the action window.
"""

from __future__ import annotations


def effective(*, global_dry_run: bool, runbook_dry_run: bool) -> bool:
    return global_dry_run or runbook_dry_run
