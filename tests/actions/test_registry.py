"""The registry and the parameter table name the same actions, and every action builds."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes_asyncio import client as k8s

from responder.actions.base import Action, ActionContext
from responder.actions.notify import Notify
from responder.actions.params import ACTION_PARAMS, NotifyParams
from responder.actions.registry import ACTIONS, ActionDeps, build_actions
from responder.models.target import Target
from responder.settings import ActionsSettings


def test_registry_and_params_table_agree() -> None:
    assert list(ACTIONS) == list(ACTION_PARAMS)


async def test_every_action_builds_and_implements_the_interface(
    make_settings: Callable[..., ActionsSettings],
) -> None:
    api = k8s.ApiClient()  # never connects: building makes no call
    deps = ActionDeps.build(make_settings(), api)
    try:
        built = build_actions(deps)
        assert set(built) == set(ACTION_PARAMS)
        for name, action in built.items():
            assert isinstance(action, Action)
            assert action.name == name
    finally:
        await deps.close()
        await api.close()


async def test_notify_changes_nothing_and_requests_a_notification(
    make_ctx: Callable[..., ActionContext],
) -> None:
    ctx = make_ctx()
    target = Target(namespace="payments", name="api")
    result = await Notify().run(
        ctx, target, NotifyParams(message="cache cleared", channel="#incidents")
    )
    assert not result.changed
    assert result.data["notification"] == {
        "incident_id": ctx.incident_id,
        "message": "cache cleared",
        "channel": "#incidents",
        "severity": "info",
    }
    assert await Notify().reconcile(ctx, target, ctx.key) is True
