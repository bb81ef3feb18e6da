"""The retry classifier and the backoff loop."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from responder.actions.base import ActionContext
from responder.actions.retry import (
    ConflictError,
    NotFoundError,
    Operation,
    RetryPolicy,
    classify_status,
    with_retries,
)
from responder.errors import PermanentError, TemporaryError

OP = Operation("patch", "deployments.apps", "payments", "api")
K8S_403 = (
    'deployments.apps "api" is forbidden: User "system:serviceaccount:responder:responder" '
    'cannot patch resource "deployments" in API group "apps" in the namespace "payments"'
)


def test_forbidden_becomes_a_sentence() -> None:
    error = classify_status(403, op=OP, message=K8S_403)
    assert isinstance(error, PermanentError)
    assert (
        str(error)
        == "RBAC: serviceaccount responder/responder cannot patch deployments.apps in namespace payments"
    )


def test_forbidden_subresource_and_core_group() -> None:
    message = (
        'services is forbidden: User "system:serviceaccount:ops:resp" cannot list resource '
        '"services" in API group "" in the namespace "shop"'
    )
    error = classify_status(403, op=OP, message=message)
    assert str(error) == "RBAC: serviceaccount ops/resp cannot list services in namespace shop"


def test_forbidden_without_a_parsable_message_names_the_operation() -> None:
    error = classify_status(
        403, op=OP, message="nope", identity="serviceaccount responder/responder"
    )
    assert (
        str(error)
        == "RBAC: serviceaccount responder/responder cannot patch deployments.apps in namespace payments"
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (409, ConflictError),
        (429, TemporaryError),
        (500, TemporaryError),
        (503, TemporaryError),
        (401, PermanentError),
        (403, PermanentError),
        (404, NotFoundError),
        (422, PermanentError),
        (400, PermanentError),
    ],
)
def test_statuses_classified(status: int, kind: type[Exception]) -> None:
    error = classify_status(status, op=OP)
    assert isinstance(error, kind)
    assert isinstance(error, TemporaryError) == (status in (409, 429, 500, 503))


def test_retry_after_is_honoured() -> None:
    error = classify_status(429, op=OP, retry_after="7")
    assert isinstance(error, TemporaryError)
    assert error.delay == 7.0
    dated = classify_status(429, op=OP, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    assert isinstance(dated, TemporaryError)
    assert dated.delay == 1.0


def test_backoff_is_jittered_and_capped() -> None:
    policy = RetryPolicy(attempts=10, base_s=0.5, cap_s=4.0)
    rng = random.Random(1)
    delays = [policy.backoff(n, rng) for n in range(1, 10) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100  # jittered, not lockstep


async def test_temporary_then_success(make_ctx: Callable[..., ActionContext]) -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise classify_status(503, op=OP)
        return "done"

    policy = RetryPolicy(attempts=5, base_s=0.001, cap_s=0.002)
    assert await with_retries(make_ctx(), flaky, policy=policy, what="t") == "done"
    assert len(calls) == 3


async def test_permanent_is_not_retried(make_ctx: Callable[..., ActionContext]) -> None:
    calls: list[int] = []

    async def forbidden() -> None:
        calls.append(1)
        raise classify_status(403, op=OP, message=K8S_403)

    with pytest.raises(PermanentError, match="RBAC"):
        await with_retries(make_ctx(), forbidden, policy=RetryPolicy(5, 0.001, 0.002), what="t")
    assert len(calls) == 1


async def test_gives_up_after_attempts(make_ctx: Callable[..., ActionContext]) -> None:
    calls: list[int] = []

    async def down() -> None:
        calls.append(1)
        raise ConnectionRefusedError("down")

    with pytest.raises(TemporaryError, match="gave up after 3 tries"):
        await with_retries(make_ctx(), down, policy=RetryPolicy(3, 0.001, 0.002), what="t")
    assert len(calls) == 3

    async def busy() -> None:
        raise classify_status(500, op=OP)

    with pytest.raises(TemporaryError, match="gave up after 3 tries"):
        await with_retries(make_ctx(), busy, policy=RetryPolicy(3, 0.001, 0.002), what="t")


async def test_deadline_stops_retrying(make_ctx: Callable[..., ActionContext]) -> None:
    ctx = make_ctx()
    ctx = make_ctx(deadline=ctx.clock.monotonic() + 0.05)

    async def limited() -> None:
        raise classify_status(429, op=OP, retry_after="5")

    with pytest.raises(TemporaryError, match="step deadline"):
        await with_retries(ctx, limited, policy=RetryPolicy(10, 0.001, 0.002), what="t")


def test_kubernetes_api_exception_is_classified_with_its_status_body_and_retry_after() -> None:
    from kubernetes_asyncio.client.exceptions import ApiException

    from responder.actions.retry import kube_error

    busy = ApiException(status=429, reason="Too Many Requests")
    busy.headers = {"Retry-After": "3"}
    error = kube_error(busy, OP, "serviceaccount responder/responder")
    assert isinstance(error, TemporaryError)
    assert error.delay == 3.0

    forbidden = ApiException(status=403, reason="Forbidden")
    forbidden.body = '{"kind":"Status","message":' + __import__("json").dumps(K8S_403) + "}"
    assert str(kube_error(forbidden, OP, "x")) == (
        "RBAC: serviceaccount responder/responder cannot patch deployments.apps in namespace payments"
    )
