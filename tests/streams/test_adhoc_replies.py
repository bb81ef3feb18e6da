"""What a person reads after ``/responder run``: the result described, untrusted text defused."""

from __future__ import annotations

from responder.actions.base import ActionResult
from streams.adhoc import KEYS_SHOWN, adhoc_id, describe_run, slack_text


def result(keys: list[str], *, dry_run: bool, matching: int) -> ActionResult:
    return ActionResult(
        action="cache.clear",
        target="deployment/musearoo/api",
        key="adhoc-x/0/1",
        changed=not dry_run,
        dry_run=dry_run,
        before={"matching": matching},
        after={"matching": matching if dry_run else 0},
        detail=f"would delete {matching} keys matching 'gen:*'",
        data={"pattern": "gen:*", "keys": keys} if dry_run else {"pattern": "gen:*"},
    )


def test_dry_run_lists_keys_and_how_many_more() -> None:
    keys = [f"gen:{i}" for i in range(KEYS_SHOWN + 5)]
    text = describe_run(result(keys, dry_run=True, matching=140), apply=False)
    assert text.startswith(":mag: Dry run of `cache.clear` on `deployment/musearoo/api`")
    assert all(f"`gen:{i}`" in text for i in range(KEYS_SHOWN))
    assert "`gen:20`" not in text
    assert "…and 120 more" in text
    assert text.endswith("Nothing was changed; add `--apply` to do it.")


def test_applied_says_done() -> None:
    text = describe_run(result([], dry_run=False, matching=3), apply=True)
    assert text.startswith(":white_check_mark: Done: `cache.clear`")
    assert "--apply" not in text


def test_untrusted_text_cannot_break_out_or_mention() -> None:
    text = describe_run(
        result(["a`b", "<!channel>", "x&y", "new\nline"], dry_run=True, matching=4), apply=False
    )
    assert "<!channel>" not in text
    assert "`&lt;!channel&gt;`" in text
    assert "`a'b`" in text
    assert "`x&amp;y`" in text
    assert "`new?line`" in text
    assert slack_text("x" * 500, 10) == "x" * 10


def test_adhoc_id_is_stable_and_shaped_like_an_incident_id() -> None:
    assert adhoc_id("slack:T1:abc") == adhoc_id("slack:T1:abc")
    assert adhoc_id("slack:T1:abc") != adhoc_id("slack:T1:abd")
    assert adhoc_id("k").startswith("adhoc-")
    assert len(adhoc_id("k")) == 26
