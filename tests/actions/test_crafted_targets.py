"""A crafted label value never reaches an API call: every action, pointed at a recording HTTP
server standing where the kube-apiserver / model pods would be, is refused before it sends
a single request; a valid target does reach the server (so the recorder would see a leak)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s
from pydantic import ValidationError

from responder.actions.base import ActionContext
from responder.actions.params import ACTION_PARAMS
from responder.actions.registry import ActionDeps, build_actions
from responder.errors import PermanentError, ResponderError
from responder.models.target import Target
from responder.settings import ActionsSettings

CRAFTED = ["x; rm -rf /", "../../etc", "a" * 300, "p\u0430yments", "web\n", "$(id)", "a/b"]

PARAMS: dict[str, dict[str, Any]] = {
    "deployment.restart": {},
    "deployment.scale": {"factor": 2},
    "deployment.rollback": {},
    "cache.clear": {"pattern": "generation:*"},
    "model.reload": {},
    "region.failover": {"httproute": {"name": "api", "primary": "a", "backup": "b"}},
    "region.failback": {"httproute": {"name": "api"}},
    "connections.reset": {},
    "http.request": {"base": "hub", "path": "/drain"},
    "notify": {"message": "hello"},
}


def test_every_action_is_covered() -> None:
    assert set(PARAMS) == set(ACTION_PARAMS)


@pytest.fixture
async def catalogue(recorder: Any, make_settings: Callable[..., ActionsSettings]) -> Any:
    config = k8s.Configuration(host=recorder.url)
    api = k8s.ApiClient(configuration=config)
    settings = make_settings(
        http_base_urls={"hub": recorder.url},
        redis_urls={
            "default": "redis://127.0.0.1:1/0"
        },  # nothing listens: a call would fail loudly
        retry_attempts=1,
    )
    deps = ActionDeps.build(settings, api)
    yield build_actions(deps)
    await deps.close()
    await api.close()


@pytest.mark.parametrize("name", sorted(set(PARAMS) - {"notify"}))  # notify calls nothing
@pytest.mark.parametrize("field", ["namespace", "name"])
async def test_crafted_target_values_send_nothing(
    catalogue: Any, recorder: Any, make_ctx: Callable[..., ActionContext], name: str, field: str
) -> None:
    params = ACTION_PARAMS[name].model_validate(PARAMS[name])
    for value in CRAFTED:
        fields = {"namespace": "payments", "name": "web", field: value}
        with pytest.raises(ValidationError, match="RFC 1123"):
            Target(**fields)
        sneaky = Target.model_construct(kind="deployment", region=None, **fields)
        with pytest.raises(PermanentError, match="refusing target"):
            await catalogue[name].run(make_ctx(), sneaky, params)
    assert recorder.requests == []


async def test_a_valid_target_does_reach_the_server(
    catalogue: Any, recorder: Any, make_ctx: Callable[..., ActionContext]
) -> None:
    recorder.script = [404]
    with pytest.raises(ResponderError):
        await catalogue["deployment.restart"].run(
            make_ctx(),
            Target(namespace="payments", name="web"),
            ACTION_PARAMS["deployment.restart"](),
        )
    assert recorder.requests[0]["path"] == "/apis/apps/v1/namespaces/payments/deployments/web"
