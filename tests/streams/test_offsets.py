"""Commits never pass what the agents finished (streams/offsets.py).

The consumer here is the real one the worker builds (``create_streams``: Faust's aiokafka
consumer with our commit cap), not started: the test puts it in the state a rebalance
leaves behind (messages skipped as stale and acknowledged by Faust's stream) and asks it
what it would commit.
"""

from __future__ import annotations

from faust.types import TP

from responder.settings import KafkaSettings, Settings, WorkerSettings
from streams.app import create_streams
from streams.offsets import CappedConsumer, ProcessedOffsets


def consumer_and_topics() -> tuple[CappedConsumer, str, str]:
    settings = Settings(
        kafka=KafkaSettings(bootstrap="127.0.0.1:9", topic_prefix="offsets-test"),
        worker=WorkerSettings(store="memory://", web_enabled=False),
    )
    streams = create_streams(settings)
    consumer = streams.app.consumer
    assert isinstance(consumer, CappedConsumer)
    return consumer, streams.alerts.get_topic_name(), "someone-elses-topic"


def faust_acked(consumer: CappedConsumer, tp: TP, offsets: range) -> None:
    """What Faust's stream records when it acknowledges these offsets (skipped or not)."""
    consumer._acked[tp].extend(offsets)
    consumer._acked_index[tp].update(offsets)


def test_skipped_messages_acknowledged_by_faust_are_not_committed() -> None:
    consumer, alerts, _ = consumer_and_topics()
    tp = TP(alerts, 0)
    consumer._committed_offset[tp] = 100
    faust_acked(consumer, tp, range(100, 151))  # fetched before the rebalance, skipped after
    assert consumer._new_offset(tp) is None  # nothing finished since the assignment


def test_commits_go_as_far_as_the_agents_finished_and_no_further() -> None:
    consumer, alerts, _ = consumer_and_topics()
    tp = TP(alerts, 1)
    consumer._committed_offset[tp] = 100
    for offset in range(100, 120):
        consumer.processed.done(tp, offset)
    faust_acked(consumer, tp, range(100, 151))
    assert consumer._new_offset(tp) == 120


def test_with_nothing_skipped_the_commit_is_faust_s() -> None:
    consumer, alerts, _ = consumer_and_topics()
    tp = TP(alerts, 2)
    consumer._committed_offset[tp] = 10
    for offset in range(10, 20):
        consumer.processed.done(tp, offset)
    faust_acked(consumer, tp, range(10, 20))
    assert consumer._new_offset(tp) == 20


def test_topics_no_pipeline_reports_on_are_committed_as_faust_decides() -> None:
    consumer, _, other = consumer_and_topics()
    tp = TP(other, 0)
    consumer._committed_offset[tp] = 5
    faust_acked(consumer, tp, range(5, 9))
    assert consumer._new_offset(tp) == 9


def test_revoked_partitions_start_over() -> None:
    processed = ProcessedOffsets()
    processed.manage(["t"])
    tp = TP("t", 0)
    processed.done(tp, 41)
    assert processed.cap(tp, 100, committed=30) == 42
    processed.forget([tp])
    assert processed.cap(tp, 100, committed=30) is None
    processed.done(tp, 29)  # below the committed offset: never a step back
    assert processed.cap(tp, 100, committed=30) is None
