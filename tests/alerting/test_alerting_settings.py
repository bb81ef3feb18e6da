"""The alerting settings: defaults that keep metric streams off, errors naming the setting."""

from __future__ import annotations

import pytest

from responder.errors import ConfigError
from responder.settings import AlertingSettings, RemediationSettings, Settings


def test_off_by_default_and_the_verification_prometheus_reused() -> None:
    settings = Settings(remediation=RemediationSettings(prometheus_url="http://127.0.0.1:1"))
    assert settings.alerting.definitions_dir is None
    assert settings.alerting_prometheus_url == "http://127.0.0.1:1"
    own = settings.model_copy(
        update={"alerting": AlertingSettings(prometheus_url="http://127.0.0.1:2")}
    )
    assert own.alerting_prometheus_url == "http://127.0.0.1:2"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"prometheus_url": "127.0.0.1:9090"},
            "alerting.prometheus_url must be an http:// or https:// URL",
        ),
        (
            {"backoff_base_s": 10.0, "backoff_max_s": 5.0},
            "alerting.backoff_max_s must be ≥ alerting.backoff_base_s",
        ),
    ],
)
def test_errors_name_the_setting(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AlertingSettings(**fields)  # type: ignore[arg-type]


def test_every_field_is_described() -> None:
    assert all(field.description for field in AlertingSettings.model_fields.values())
