"""The committer: finished positions committed on a cadence, refusals retried, lag series."""

from __future__ import annotations

from bridge.metrics import BridgeMetrics
from bridge.service.committer import Committer
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.record_work import RecordWork
from tests.service.loop_fakes import FakeClock, FakeSource

TOPIC = "shop.orders"
P0 = (TOPIC, 0)
P1 = (TOPIC, 1)


class FinishingSink:
    def __init__(self, tracker: OffsetTracker) -> None:
        self.tracker = tracker

    def write(self, letter: object, ticket: Ticket) -> None:
        self.tracker.finish(ticket)


def _committer(
    clock: FakeClock,
) -> tuple[Committer, OffsetTracker, BridgeMetrics]:
    tracker = OffsetTracker(clock)
    for partition in (0, 1):
        tracker.assign(TOPIC, partition)
    metrics = BridgeMetrics()
    work = RecordWork(tracker, FinishingSink(tracker), metrics)
    committer = Committer(
        work, metrics, Health(), commit_interval=1.0, lag_interval=5.0, clock=clock
    )
    return committer, tracker, metrics


def _committed_count(metrics: BridgeMetrics) -> float | None:
    return metrics.registry.get_sample_value(
        "vibes_bridge_records_committed_total", {"topic": TOPIC}
    )


def _lag(metrics: BridgeMetrics, partition: int) -> float | None:
    return metrics.registry.get_sample_value(
        "vibes_bridge_consumer_lag", {"topic": TOPIC, "partition": str(partition)}
    )


def test_only_the_finished_prefix_is_committed_and_counted() -> None:
    clock = FakeClock()
    committer, tracker, metrics = _committer(clock)
    tickets = [tracker.add(TOPIC, 0, offset, units=1, size=1) for offset in range(3)]
    tracker.finish(tickets[0])
    tracker.finish(tickets[2])  # behind an unfinished record: not committable yet
    source = FakeSource([P0, P1])
    committer.tick(source)
    assert source.commits == [{P0: 1}]
    assert _committed_count(metrics) == 1
    tracker.finish(tickets[1])
    clock.advance(1.0)
    committer.tick(source)
    assert source.commits[-1] == {P0: 3}
    assert _committed_count(metrics) == 3


def test_commits_wait_for_their_interval() -> None:
    clock = FakeClock()
    committer, tracker, _metrics = _committer(clock)
    source = FakeSource([P0])
    tracker.add(TOPIC, 0, 0, units=0, size=0)
    committer.tick(source)
    tracker.add(TOPIC, 0, 1, units=0, size=0)
    clock.advance(0.5)
    committer.tick(source)
    assert source.commits == [{P0: 1}]
    clock.advance(0.5)
    committer.tick(source)
    assert source.commits == [{P0: 1}, {P0: 2}]


def test_a_refused_commit_is_offered_again_and_not_counted() -> None:
    clock = FakeClock()
    committer, tracker, metrics = _committer(clock)
    source = FakeSource([P0], accept_commits=False)
    tracker.add(TOPIC, 0, 0, units=0, size=0)
    committer.tick(source)
    assert _committed_count(metrics) in (None, 0)
    source.accept_commits = True
    clock.advance(1.0)
    committer.tick(source)
    assert source.commits == [{P0: 1}]
    assert _committed_count(metrics) == 1


def test_a_revocation_commits_only_the_revoked_partitions() -> None:
    committer, tracker, _metrics = _committer(FakeClock())
    tracker.add(TOPIC, 0, 4, units=0, size=0)
    tracker.add(TOPIC, 1, 7, units=0, size=0)
    source = FakeSource([P0, P1])
    committer.commit(source, [P1])
    assert source.commits == [{P1: 8}]


def test_lag_is_exported_on_its_own_cadence_and_at_once_after_an_assignment() -> None:
    clock = FakeClock()
    committer, tracker, metrics = _committer(clock)
    source = FakeSource([P0], highs={P0: 10})
    tracker.add(TOPIC, 0, 2, units=1, size=1)  # stuck at the head: lag from the first record
    committer.tick(source)
    assert _lag(metrics, 0) == 8
    source.highs[P0] = 15
    clock.advance(1.0)
    committer.tick(source)
    assert _lag(metrics, 0) == 8  # not due yet
    committer.lag_now()
    committer.tick(source)
    assert _lag(metrics, 0) == 13
    clock.advance(5.0)
    source.highs[P0] = 20
    committer.tick(source)
    assert _lag(metrics, 0) == 18


def test_forgetting_partitions_removes_their_series_even_if_never_exported() -> None:
    committer, tracker, metrics = _committer(FakeClock())
    source = FakeSource([P0], highs={P0: 5})
    tracker.add(TOPIC, 0, 0, units=0, size=0)
    committer.tick(source)
    assert _lag(metrics, 0) == 4
    committer.forget([P0, P1])
    assert _lag(metrics, 0) is None
    age = metrics.registry.get_sample_value(
        "vibes_bridge_oldest_unfinished_record_age_seconds", {"topic": TOPIC, "partition": "0"}
    )
    assert age is None
