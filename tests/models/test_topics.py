"""The one declaration of topics and tables: complete, unique, and naming real models."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest

from responder.models import topics
from responder.models.incidents import AuditEvent
from responder.models.topics import TABLES, TOPICS, Table, Topic, audit_key, topic_name


def _declared(kind: type) -> list[object]:
    return [v for v in vars(topics).values() if isinstance(v, kind)]


def test_every_declared_topic_and_table_is_listed_once() -> None:
    assert set(_declared(Topic)) == set(TOPICS)
    assert set(_declared(Table)) == set(TABLES)
    assert len({t.name for t in TOPICS}) == len(TOPICS)
    assert len({t.name for t in TABLES}) == len(TABLES)


MODELLED = [d for d in (*TOPICS, *TABLES) if d is not topics.ROUTES_TABLE]
"""Every value is a model's JSON but the routes table's (a target key as text)."""


@pytest.mark.parametrize("declared", MODELLED, ids=lambda d: d.name)
def test_value_names_an_importable_model(declared: Topic | Table) -> None:
    module, _, name = declared.value.rpartition(".")
    assert hasattr(importlib.import_module(module), name), declared.value


def test_names_under_the_deployment_prefix() -> None:
    assert topic_name("responder", topics.ALERTS) == "responder.alerts"
    assert topics.REMEDIATION_TABLE.changelog("w") == "w-remediation-changelog"


def _audit(incident_id: str, incident_key: str) -> AuditEvent:
    return AuditEvent(
        kind="k", incident_id=incident_id, incident_key=incident_key, at=datetime.now(UTC), data={}
    )


def test_an_audit_record_is_keyed_by_what_it_is_about() -> None:
    assert audit_key(_audit("id-1", "musearoo/hub")) == b"musearoo/hub"
    assert audit_key(_audit("id-1", "")) == b"id-1"
