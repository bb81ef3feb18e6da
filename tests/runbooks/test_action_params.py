"""The action parameter models: one per catalogue action, strict, with the rules of issue 6."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from responder.actions.params import (
    ACTION_PARAMS,
    CacheClearParams,
    DeploymentScaleParams,
    HTTPRequestParams,
    ModelReloadParams,
    RegionFailbackParams,
    RegionFailoverParams,
    parse_duration,
)


def test_the_table_is_the_catalogue() -> None:
    assert sorted(ACTION_PARAMS) == [
        "cache.clear",
        "connections.reset",
        "deployment.restart",
        "deployment.rollback",
        "deployment.scale",
        "http.request",
        "model.reload",
        "notify",
        "region.failback",
        "region.failover",
    ]
    assert len(set(ACTION_PARAMS.values())) == len(ACTION_PARAMS)  # one model per action


@pytest.mark.parametrize("model", list(ACTION_PARAMS.values()), ids=list(ACTION_PARAMS))
def test_every_model_forbids_unknown_keys_and_is_immutable(model: Any) -> None:
    assert model.model_config["extra"] == "forbid"
    assert model.model_config["frozen"] is True


def _errors(model: Any, data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [
        (".".join(str(part) for part in error["loc"]), error["msg"])
        for error in caught.value.errors(include_url=False)
    ]


def test_scale() -> None:
    params = DeploymentScaleParams.model_validate({"factor": 2})
    assert (params.factor, params.min, params.max, params.hpa) == (2.0, 1, 20, "raise_min")
    assert DeploymentScaleParams.model_validate({"replicas": 0, "min": 0}).replicas == 0
    assert _errors(DeploymentScaleParams, {"factor": 2, "min": 4, "max": 3}) == [
        ("max", "must be ≥ min")
    ]
    assert _errors(DeploymentScaleParams, {"factor": 2, "replicas": 3}) == [
        ("", "set exactly one of factor or replicas")
    ]
    assert _errors(DeploymentScaleParams, {"replicas": 30}) == [
        ("", "replicas 30 is outside min..max (1..20)")
    ]
    assert _errors(DeploymentScaleParams, {"factor": 0}) == [
        ("factor", "Input should be greater than 0")
    ]


def test_cache_clear() -> None:
    assert CacheClearParams.model_validate({"pattern": "generation:*"}).all is False
    assert CacheClearParams.model_validate({"all": True}).pattern is None
    assert _errors(CacheClearParams, {}) == [("", "set exactly one of pattern or all: true")]
    assert _errors(CacheClearParams, {"pattern": "a b"}) == [
        ("pattern", "must be 1-256 printable ASCII characters without spaces")
    ]


@pytest.mark.parametrize(
    "path",
    ["https://evil/x", "//evil/x", "/a/../b", "relative", "/a b", "/é", "/a\n"],
)
def test_http_request_refuses_anything_but_a_relative_path(path: str) -> None:
    [(where, _message)] = _errors(HTTPRequestParams, {"base": "api", "path": path})
    assert where == "path"


def test_http_request() -> None:
    params = HTTPRequestParams.model_validate(
        {
            "base": "api",
            "path": "/admin/flush?scope=all",
            "expect_status": 204,
            "headers": {"Authorization": {"secret": "api-token"}},
        }
    )
    assert params.expect_status == [204]
    assert params.method == "POST"
    assert params.headers["Authorization"].secret == "api-token"
    assert _errors(
        HTTPRequestParams,
        {"base": "api", "path": "/x", "headers": {"Authorization": "Bearer hunter2"}},
    ) == [("headers.Authorization", "Input should be a valid dictionary or instance of SecretRef")]


def test_model_reload() -> None:
    assert ModelReloadParams.model_validate({}).path == "/reload"
    assert ModelReloadParams.model_validate({"restart": True}).restart is True
    assert _errors(ModelReloadParams, {"restart": True, "variant": "backup"}) == [
        ("", "path, port, variant and concurrency do not apply when restart is true")
    ]


def test_region_failover_and_failback() -> None:
    route = RegionFailoverParams.model_validate(
        {"httproute": {"name": "api", "primary": "api-eu", "backup": "api-us"}}
    )
    assert route.httproute is not None
    assert route.httproute.backup_weight == 100
    service = RegionFailoverParams.model_validate(
        {"service": {"name": "db", "selector": {"app.kubernetes.io/name": "db", "role": "replica"}}}
    )
    assert service.service is not None
    assert _errors(RegionFailoverParams, {}) == [("", "set exactly one of httproute or service")]
    assert _errors(
        RegionFailoverParams, {"httproute": {"name": "api", "primary": "a", "backup": "a"}}
    ) == [("httproute.backup", "must differ from primary")]
    assert _errors(
        RegionFailoverParams, {"service": {"name": "db", "selector": {"role": "a b"}}}
    ) == [("service.selector", "'role=a b' is not a valid Kubernetes label selector entry")]
    assert RegionFailbackParams.model_validate({"service": {"name": "db"}}).service is not None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("0s", 0), ("2h5m10s", 7510)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "5", "5 m", "1d", "m5", "5M", "-5s", "1.5h", "30s ", True, 30]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
