"""Block Kit rendering of an incident: the one message people watch and press buttons on.

Pure functions from ``Notification`` to Slack's JSON, so the layout is tested without a
server. Label values and step output are untrusted: they are escaped (``&``, ``<``,
``>``) so an alert cannot mention ``@channel`` or forge a link, and every text is cut
to the limits Slack documents (header 150, section 3000, field 2000, button 75).
"""

from __future__ import annotations

from typing import Any

from responder.models.notifications import (
    IncidentPhase,
    IncidentSummary,
    Notification,
    StepReport,
    StepStatus,
)

ACTION_ACK = "responder_ack"
ACTION_APPROVE = "responder_approve"
ACTION_REJECT = "responder_reject"
ACTION_ESCALATE = "responder_escalate"
ACTION_RESOLVE = "responder_resolve"

PHASE_EMOJI: dict[IncidentPhase, str] = {
    IncidentPhase.OPEN: ":red_circle:",
    IncidentPhase.REMEDIATING: ":hammer_and_wrench:",
    IncidentPhase.VERIFYING: ":mag:",
    IncidentPhase.AWAITING_APPROVAL: ":raised_hand:",
    IncidentPhase.ESCALATED: ":rotating_light:",
    IncidentPhase.ACKNOWLEDGED: ":eyes:",
    IncidentPhase.RESOLVED: ":white_check_mark:",
}

STEP_EMOJI: dict[StepStatus, str] = {
    StepStatus.PENDING: ":white_circle:",
    StepStatus.RUNNING: ":hourglass_flowing_sand:",
    StepStatus.SUCCEEDED: ":heavy_check_mark:",
    StepStatus.FAILED: ":x:",
    StepStatus.SKIPPED: ":fast_forward:",
    StepStatus.DRY_RUN: ":memo:",
}


def escape(text: str) -> str:
    """Slack's three control characters, as its formatting guide says to escape them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _target_text(target: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(target.items())) or "-"


def _step_line(step: StepReport) -> str:
    line = (
        f"{STEP_EMOJI[step.status]} {step.index + 1}. `{escape(step.action)}` {step.status.value}"
    )
    if step.approval_required:
        line += " (approval required)"
    if step.detail:
        line += f": {escape(cut(step.detail, 200))}"
    return line


def _safe_link(href: str, text: str) -> str | None:
    if not href.startswith(("https://", "http://")) or any(c in href for c in "<>| \n"):
        return None
    return f"<{href}|{escape(text).replace('|', '/')}>"


def fallback_text(n: Notification) -> str:
    """The notification text (push notifications, screen readers): the SDK warns without it."""
    return cut(f"{n.phase.value.upper()}: {n.title} [{n.runbook_id}] ({n.incident_id})", 3000)


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": cut(text, 75)},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def buttons(n: Notification) -> list[dict[str, Any]]:
    """The buttons that make sense in the incident's phase."""
    if n.phase is IncidentPhase.RESOLVED:
        return []
    result: list[dict[str, Any]] = []
    approval = n.approval_step
    if approval is not None:
        value = f"{n.incident_id}@{approval.index}"
        result.append(_button("Approve", ACTION_APPROVE, value, "primary"))
        reject = _button("Reject", ACTION_REJECT, value, "danger")
        reject["confirm"] = {
            "title": {"type": "plain_text", "text": "Reject this step?"},
            "text": {
                "type": "plain_text",
                "text": cut(f"Skip {approval.action} and escalate.", 300),
            },
            "confirm": {"type": "plain_text", "text": "Reject"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        result.append(reject)
    if n.phase is not IncidentPhase.ACKNOWLEDGED and not n.acknowledged:
        result.append(_button("Acknowledge", ACTION_ACK, n.incident_id))
    if n.phase is not IncidentPhase.ESCALATED:
        result.append(_button("Escalate now", ACTION_ESCALATE, n.incident_id, "danger"))
    result.append(_button("Resolve", ACTION_RESOLVE, n.incident_id))
    return result


def incident_blocks(n: Notification) -> list[dict[str, Any]]:
    """The incident message: header, facts, steps, links, buttons."""
    step_text = "-"
    if n.current_step is not None:
        step_text = (
            f"{n.current_step + 1} of {len(n.steps)}" if n.steps else str(n.current_step + 1)
        )
    fields = [
        f"*State*\n{PHASE_EMOJI[n.phase]} {n.phase.value}"
        + (
            " (acknowledged)"
            if n.acknowledged and n.phase is not IncidentPhase.ACKNOWLEDGED
            else ""
        ),
        f"*Severity*\n{n.severity.value}",
        f"*Runbook*\n`{escape(n.runbook_id)}`",
        f"*Target*\n{escape(_target_text(n.target))}",
        f"*Step*\n{step_text}",
        f"*Escalation level*\n{n.escalation_level}",
    ]
    if n.actor:
        fields.append(f"*Last action by*\n{escape(n.actor)}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": cut(f"{n.title}", 150)},
        },
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": cut(f, 2000)} for f in fields[:10]],
        },
    ]
    if n.steps:
        lines = "\n".join(_step_line(s) for s in n.steps)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": cut(lines, 3000)}})
    links = [link for link in (_safe_link(x.href, x.text) for x in n.links) if link]
    context = [f"incident `{n.incident_id}`", *links]
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": cut(" · ".join(context), 3000)}],
        }
    )
    actions = buttons(n)
    if actions:
        blocks.append(
            {"type": "actions", "block_id": f"responder_actions_{n.sequence}", "elements": actions}
        )
    return blocks


def thread_text(n: Notification) -> str:
    """One thread reply per transition: what happened, who did it."""
    who = f" by {escape(n.actor)}" if n.actor else ""
    what = f": {escape(n.event)}" if n.event else ""
    return cut(f"{PHASE_EMOJI[n.phase]} *{n.phase.value}*{who}{what}", 3000)


def summary_line(s: IncidentSummary) -> str:
    step = f" step {s.current_step + 1}" if s.current_step is not None else ""
    return (
        f"{PHASE_EMOJI[s.phase]} `{s.id}` {escape(cut(s.title, 120))} "
        f"[{escape(s.runbook_id)}] {s.phase.value}{step} ({escape(_target_text(s.target))})"
    )


def summary_detail(s: IncidentSummary) -> str:
    lines = [
        f"{PHASE_EMOJI[s.phase]} *{escape(cut(s.title, 200))}*",
        f"id `{s.id}` · runbook `{escape(s.runbook_id)}` · {s.phase.value} · {s.severity.value}",
        f"target {escape(_target_text(s.target))} · opened {s.opened_at.isoformat()}",
        *(_step_line(step) for step in s.steps),
    ]
    return cut("\n".join(lines), 3000)
