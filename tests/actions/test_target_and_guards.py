"""Targets and guard rails: crafted names are refused before anything is built from them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from responder.actions.guards import Guards
from responder.errors import ConfigError, PermanentError
from responder.models.target import Target
from responder.settings import ActionsSettings

CRAFTED = [
    "x; rm -rf /",
    "../../etc",
    "a" * 300,
    "p\u0430yments",  # Cyrillic a look-alike (U+0430)
    "\uff50ayments",  # fullwidth p look-alike (U+FF50)
    "payments\n",
    "Payments",
    "-payments",
    "",
    "pay ments",
    "$(id)",
]


@pytest.mark.parametrize("value", CRAFTED)
def test_crafted_values_are_not_targets(value: str) -> None:
    with pytest.raises(ValidationError):
        Target(namespace=value, name="api")
    with pytest.raises(ValidationError):
        Target(namespace="payments", name=value)


def test_deployment_names_may_be_dotted_subdomains() -> None:
    target = Target(namespace="payments", name="api.v2")
    assert str(target) == "deployment/payments/api.v2"


@pytest.mark.parametrize("value", CRAFTED)
def test_guards_recheck_names_of_unvalidated_targets(guards: Guards, value: str) -> None:
    sneaky = Target.model_construct(
        namespace="payments", kind="deployment", name=value, region=None
    )
    with pytest.raises(PermanentError, match="refusing target"):
        guards.check_target(sneaky)


def test_namespace_allow_list_exact_and_prefix(guards: Guards) -> None:
    guards.check_target(Target(namespace="payments", name="api"))
    guards.check_target(Target(namespace="test-abc", name="api"))
    with pytest.raises(PermanentError, match=r"not in actions\.allowed_namespaces"):
        guards.check_target(Target(namespace="kube-system", name="api"))


def test_empty_allow_list_refuses_everything(make_settings: Callable[..., ActionsSettings]) -> None:
    guards = Guards.from_settings(make_settings(allowed_namespaces=[]))
    with pytest.raises(PermanentError):
        guards.check_target(Target(namespace="default", name="api"))


def test_replicas_clamped_to_runbook_then_global_limits(
    make_settings: Callable[..., ActionsSettings],
) -> None:
    guards = Guards.from_settings(make_settings(min_replicas=2, max_replicas=10))
    assert guards.clamp_replicas(50, low=1, high=20) == 10
    assert guards.clamp_replicas(0, low=0, high=20) == 2
    assert guards.clamp_replicas(4, low=6, high=20) == 6
    assert guards.clamp_replicas(9, low=1, high=5) == 5


def test_floor_above_ceiling_is_a_config_error(
    make_settings: Callable[..., ActionsSettings],
) -> None:
    with pytest.raises(ConfigError):
        Guards.from_settings(make_settings(min_replicas=30, max_replicas=20))


def test_endpoint_addresses_default_to_loopback_only(guards: Guards) -> None:
    guards.check_endpoint("127.0.0.1")
    guards.check_endpoint("127.0.0.42")
    for outside in [
        "10.0.0.5",
        "192.168.1.1",
        "172.16.0.1",
        "8.8.8.8",
        "::1",
        "localhost",
        "127.0.0.1; ls",
    ]:
        with pytest.raises(PermanentError):
            guards.check_endpoint(outside)


def test_endpoint_networks_are_configurable(make_settings: Callable[..., ActionsSettings]) -> None:
    guards = Guards.from_settings(make_settings(allowed_endpoint_networks=["10.244.0.0/16"]))
    guards.check_endpoint("10.244.3.4")
    with pytest.raises(PermanentError, match=r"outside actions\.allowed_endpoint_networks"):
        guards.check_endpoint("127.0.0.1")


def test_url_for_stays_under_the_named_base(make_settings: Callable[..., ActionsSettings]) -> None:
    guards = Guards.from_settings(
        make_settings(http_base_urls={"hub": "http://127.0.0.1:8080/admin/"})
    )
    assert guards.url_for("hub", "/drain?x=1") == "http://127.0.0.1:8080/admin/drain?x=1"
    for path in ["/../secrets", "//evil.example/x", "drain", "/a b", "/x\n", "/é"]:
        with pytest.raises(PermanentError):
            guards.url_for("hub", path)
    with pytest.raises(PermanentError, match="no base URL named"):
        guards.url_for("other", "/x")


def test_base_urls_must_be_plain_http(make_settings: Callable[..., ActionsSettings]) -> None:
    for bad in ["ftp://x/", "http://user:pw@host/", "http:///nohost"]:
        with pytest.raises(ConfigError):
            Guards.from_settings(make_settings(http_base_urls={"b": bad}))
