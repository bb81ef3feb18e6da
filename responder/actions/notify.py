"""``notify``: a runbook step that only tells people something.

It changes nothing, so it is trivially idempotent; the result carries a
notification request that the engine hands to the notify agent (which owns
delivery to Slack and PagerDuty); this module sends nothing itself.
"""

from __future__ import annotations

from responder.actions.base import ActionContext, ActionResult
from responder.actions.params import NotifyParams
from responder.models.target import Target


class Notify:
    """Emit a notification request for the incident's channels."""

    name = "notify"

    async def run(self, ctx: ActionContext, target: Target, params: NotifyParams) -> ActionResult:
        request: dict[str, str | None] = {
            "incident_id": ctx.incident_id,
            "message": params.message,
            "channel": params.channel,
            "severity": params.severity,
        }
        return ActionResult(
            action=self.name,
            target=str(target),
            key=ctx.key,
            changed=False,
            dry_run=ctx.dry_run,
            detail=f"notification requested for {params.channel or 'the incident channels'}",
            data={"notification": request},
        )

    async def reconcile(self, ctx: ActionContext, target: Target, key: str) -> bool | None:
        return True  # nothing to do, so nothing can be half done
