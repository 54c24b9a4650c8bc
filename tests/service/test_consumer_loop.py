"""The consumer loop's turn with a fake source: holds, back-pressure, revocation, rules, drain.

No broker and no thread: the test opens the loop on a :class:`FakeSource`, drives
turns one by one, and reads the decisions off the fakes. Time is a fake clock that
the fake producer's ``poll`` advances, as a real poll blocks for its timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest

from bridge.codecs import Decoder
from bridge.errors import SchemaRegistryUnavailable
from bridge.kafka.producer import DeadLetterProducer
from bridge.loading import LoadedBridge, load_bridge
from bridge.metrics import BridgeMetrics
from bridge.records import Partition, Position, SourceRecord, TraceIds
from bridge.service.consumer_loop import ConsumerLoop
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker
from bridge.service.outbox import DeadLetterOutbox
from bridge.service.record_work import LoopSettings, RecordWork
from bridge.service.stages import PreparedRecord
from bridge.tracing import NO_TRACING, RecordSpan, Tracing
from tests.service.loop_fakes import (
    FakeClock,
    FakeDispatcher,
    FakeProducer,
    FakeSource,
    ImmediateLoop,
    record,
)
from tests.support.configs import WriteConfig

ORDERS = "shop.orders"
SHIPMENTS = "shop.shipments"
P0 = (ORDERS, 0)
P1 = (ORDERS, 1)
S0 = (SHIPMENTS, 0)
EVENT = b'{"customer_id": "c-1"}'
NOT_JSON = b"not json"
RULES = """\
rules:
  - name: order-update
    topic: shop.orders
    event_type: {event_type}
    recipient:
      external_person_id: customer_id
"""


@dataclass
class Rig:
    loop: ConsumerLoop
    source: FakeSource
    clock: FakeClock
    producer: FakeProducer
    dispatcher: FakeDispatcher
    tracker: OffsetTracker
    metrics: BridgeMetrics
    health: Health

    def turn(self, *batch: Any) -> None:
        self.source.batches.append(list(batch))
        self.loop.turn(self.source)

    def finish_all(self, count: int | None = None) -> None:
        deliveries, self.dispatcher.submitted = (
            self.dispatcher.submitted[:count],
            self.dispatcher.submitted[count:] if count is not None else [],
        )
        for delivery in deliveries:
            self.tracker.finish(delivery.ticket)


def _loaded(write_config: WriteConfig, event_type: str = "order_update") -> LoadedBridge:
    return load_bridge(write_config(RULES.format(event_type=event_type), name=f"{event_type}.yaml"))


def _rig(
    write_config: WriteConfig,
    *,
    assigned: tuple[Partition, ...] = (P0, P1, S0),
    max_pending_records: int = 100,
    decoders: dict[str, Decoder] | None = None,
    tracing: Tracing = NO_TRACING,
) -> Rig:
    loaded = _loaded(write_config)
    clock = FakeClock()
    source = FakeSource(list(assigned))
    tracker = OffsetTracker(clock)
    for topic, partition in assigned:
        tracker.assign(topic, partition)
    metrics = BridgeMetrics()
    health = Health(clock=clock)
    producer = FakeProducer(clock)
    outbox = DeadLetterOutbox(
        cast(DeadLetterProducer, producer), tracker, metrics, health, clock=clock
    )
    dispatcher = FakeDispatcher()
    settings = LoopSettings(
        max_pending_records=max_pending_records,
        max_pending_bytes=10**6,
        max_event_age_seconds=None,
        shutdown_timeout_seconds=5.0,
        revoke_timeout_seconds=2.0,
    )
    loop = ConsumerLoop(
        source_factory=lambda _listener: source,
        work=RecordWork(tracker, outbox, metrics),
        outbox=outbox,
        rules=(decoders if decoders is not None else loaded.decoders, loaded.engine),
        dispatcher=dispatcher,
        loop=cast(asyncio.AbstractEventLoop, ImmediateLoop()),
        metrics=metrics,
        health=health,
        settings=settings,
        clock=clock,
        tracing=tracing,
    )
    loop.open()
    return Rig(loop, source, clock, producer, dispatcher, tracker, metrics, health)


class OutageDecoder:
    """A registry-backed decoder whose registry is down while ``down`` is set."""

    def __init__(self, inner: Decoder) -> None:
        self.inner = inner
        self.down = True

    def decode(self, data: bytes | None) -> dict[str, Any]:
        if self.down:
            raise SchemaRegistryUnavailable("registry down")
        return self.inner.decode(data)


# ---------------------------------------------------------------------- registry outage


def _outage_rig(write_config: WriteConfig, **options: Any) -> tuple[Rig, OutageDecoder]:
    base = _loaded(write_config).decoders
    outage = OutageDecoder(base[ORDERS])
    rig = _rig(write_config, decoders={ORDERS: outage, SHIPMENTS: base[SHIPMENTS]}, **options)
    return rig, outage


def test_a_registry_outage_holds_the_partition_at_its_record_and_others_go_on(
    write_config: WriteConfig,
) -> None:
    rig, _outage = _outage_rig(write_config)
    rig.turn(record(ORDERS, 0, 5, EVENT), record(ORDERS, 0, 6, EVENT), record(SHIPMENTS, 0, 9))
    assert rig.source.paused == {P0}
    assert rig.source.seeks == [(P0, 5)]  # fetched again from the failed record
    assert rig.tracker.pending_in([P0]) == 0  # offset 6 was skipped, not tracked
    assert rig.source.commits == [{S0: 10}]  # the other topic's record finished and committed


Ended = list[tuple[int, PreparedRecord | None]]


class RecordingSpan(RecordSpan):
    """Ids made from the offset; tells ``ended`` how the span ended."""

    def __init__(self, record: SourceRecord, ended: Ended) -> None:
        self.ids = TraceIds(f"{record.offset:032x}", f"00-{record.offset:032x}-{1:016x}-01")
        self._offset = record.offset
        self._ended = ended

    def finished(self, prepared: PreparedRecord | None) -> None:
        self._ended.append((self._offset, prepared))


class RecordingTracing(Tracing):
    def __init__(self) -> None:
        self.ended: Ended = []

    def record_started(self, record: SourceRecord) -> RecordSpan:
        return RecordingSpan(record, self.ended)


def test_each_record_s_span_ends_with_its_work_or_as_held(write_config: WriteConfig) -> None:
    tracing = RecordingTracing()
    base = _loaded(write_config).decoders
    outage = OutageDecoder(base[ORDERS])
    rig = _rig(write_config, decoders={ORDERS: outage, SHIPMENTS: base[SHIPMENTS]}, tracing=tracing)
    rig.turn(record(ORDERS, 0, 5, EVENT))
    outage.down = False
    rig.clock.advance(60)
    rig.turn(record(ORDERS, 0, 5, EVENT))
    (held_offset, held), (offset, prepared) = tracing.ended
    assert (held_offset, held, offset) == (5, None, 5)
    assert prepared is not None
    [delivery] = rig.dispatcher.submitted
    assert delivery.event.trace == TraceIds(f"{5:032x}", f"00-{5:032x}-{1:016x}-01")
    assert prepared.events == (delivery.event,)


def test_a_held_partition_is_released_after_its_backoff_and_then_delivered(
    write_config: WriteConfig,
) -> None:
    rig, outage = _outage_rig(write_config)
    rig.turn(record(ORDERS, 0, 5, EVENT))
    rig.clock.advance(0.9)
    rig.turn()
    assert P0 in rig.source.paused
    rig.clock.advance(0.1)
    outage.down = False
    rig.turn(record(ORDERS, 0, 5, EVENT))
    assert rig.source.paused == set()
    assert [d.ticket.offset for d in rig.dispatcher.submitted] == [5]


def test_a_second_failure_in_a_row_holds_longer(write_config: WriteConfig) -> None:
    rig, _outage = _outage_rig(write_config)
    rig.turn(record(ORDERS, 0, 5, EVENT))
    rig.clock.advance(1.0)
    rig.turn(record(ORDERS, 0, 5, EVENT))  # released, fails again: two seconds now
    assert P0 in rig.source.paused
    rig.clock.advance(1.5)
    rig.turn()
    assert P0 in rig.source.paused
    rig.clock.advance(0.5)
    rig.turn()
    assert P0 not in rig.source.paused


def test_back_pressure_does_not_resume_a_held_partition(write_config: WriteConfig) -> None:
    rig, _outage = _outage_rig(write_config, max_pending_records=2)
    rig.turn(record(ORDERS, 0, 5, EVENT), record(SHIPMENTS, 0, 1, EVENT))
    assert rig.source.paused == {P0}
    rig.loop.use_rules(  # a shipments rule, so shipments records stay in flight
        *_shipments_rules(write_config)
    )
    rig.turn(record(SHIPMENTS, 0, 2, EVENT), record(SHIPMENTS, 0, 3, EVENT))
    assert rig.source.paused == {P0, P1, S0}  # full: everything paused
    rig.finish_all()
    rig.turn()
    assert rig.source.paused == {P0}  # resumed, but the held one waits for its backoff


def _shipments_rules(
    write_config: WriteConfig,
) -> tuple[dict[str, Decoder], Any, Callable[[], None]]:
    text = RULES.format(event_type="shipped").replace("shop.orders", "shop.shipments")
    loaded = load_bridge(write_config(text, name="shipments.yaml"))
    return dict(loaded.decoders), loaded.engine, lambda: None


# ---------------------------------------------------------------------- back-pressure


def test_the_in_flight_bound_pauses_everything_and_resumes_at_half(
    write_config: WriteConfig,
) -> None:
    rig = _rig(write_config, max_pending_records=4)
    rig.turn(*(record(ORDERS, 0, offset, EVENT) for offset in range(4)))
    assert rig.source.paused == {P0, P1, S0}
    assert rig.metrics.registry.get_sample_value("vibes_bridge_consumer_paused") == 3
    rig.turn()
    assert rig.source.fetch_sizes[-1] == 1  # no room: polls, fetching at most one
    rig.finish_all(1)
    rig.turn()
    assert rig.source.paused == {P0, P1, S0}  # three in flight: above half
    rig.finish_all(1)
    rig.turn()
    assert rig.source.paused == set()
    assert rig.metrics.registry.get_sample_value("vibes_bridge_consumer_paused") == 0


def test_records_finished_behind_a_stuck_one_do_not_fill_the_bound(
    write_config: WriteConfig,
) -> None:
    """The bound counts unfinished work: one stuck record, twenty finished after it, no pause;
    the position waits at the stuck record and the commit's metadata lists the twenty."""
    rig = _rig(write_config, max_pending_records=4)
    rig.turn(record(ORDERS, 0, 0, EVENT))
    rig.dispatcher.submitted.pop(0)  # stuck: never finished
    for offset in range(1, 21):
        rig.turn(record(ORDERS, 0, offset, EVENT))
        rig.finish_all()
        assert rig.source.paused == set(), offset
    rig.clock.advance(1.0)
    rig.turn()
    assert (rig.source.commits[-1], rig.source.metadata[-1]) == ({P0: 0}, {P0: "vb1:0:1+20"})


def test_an_assignment_skips_the_records_its_commit_lists_as_finished(
    write_config: WriteConfig,
) -> None:
    """After a restart: 1, 2 and 4 were finished past the committed 0; 0, 3 and 5 are done again."""
    rig = _rig(write_config, assigned=(P0,))
    rig.source.group_positions = {P0: Position(0, "vb1:0:1+2,1+1")}
    rig.loop.partitions_assigned([P0])
    rig.turn(*(record(ORDERS, 0, offset, EVENT) for offset in range(6)))
    assert [d.ticket.offset for d in rig.dispatcher.submitted] == [0, 3, 5]
    sample = rig.metrics.registry.get_sample_value
    assert sample("vibes_bridge_records_skipped_finished_total", {"topic": ORDERS}) == 3
    assert sample("vibes_bridge_records_consumed_total", {"topic": ORDERS}) == 3
    rig.finish_all()
    rig.clock.advance(1.0)
    rig.turn()
    assert (rig.source.commits[-1], rig.source.metadata[-1]) == ({P0: 6}, {P0: ""})


# ---------------------------------------------------------------------- revocation


def _letter_in_flight(rig: Rig) -> None:
    """A record whose dead letter the broker has not acknowledged yet."""
    rig.producer.ack = None
    rig.turn(record(ORDERS, 0, 7, NOT_JSON))
    assert rig.tracker.pending_in([P0]) == 1


@pytest.mark.parametrize("polls", [1, 3, 10])
def test_a_revocation_waits_for_in_flight_work_then_commits_it(
    write_config: WriteConfig, polls: int
) -> None:
    rig = _rig(write_config)
    _letter_in_flight(rig)
    rig.producer.answer_after(polls)
    before = rig.clock()
    rig.loop.partitions_revoked([P0])
    assert rig.source.commits[-1] == {P0: 8}
    assert rig.clock() - before < 2.0  # left as soon as the work finished
    assert rig.dispatcher.forgotten == [{P0}]
    assert rig.tracker.pending_in([P0]) == 0


def test_a_revocation_gives_up_at_its_deadline_and_commits_only_what_finished(
    write_config: WriteConfig,
) -> None:
    rig = _rig(write_config)
    rig.turn(record(ORDERS, 0, 6))  # no customer_id: a dead letter, acknowledged at once
    assert rig.source.commits == [{P0: 7}]
    _letter_in_flight(rig)
    before = rig.clock()
    rig.loop.partitions_revoked([P0, P1])
    waited = rig.clock() - before
    assert 2.0 <= waited < 2.0 + 0.1
    assert rig.source.commits == [{P0: 7}]  # offset 7 is still unfinished
    assert rig.dispatcher.forgotten == [{P0, P1}]


def test_lost_partitions_are_let_go_without_waiting_or_committing(
    write_config: WriteConfig,
) -> None:
    rig = _rig(write_config)
    _letter_in_flight(rig)
    commits, before = len(rig.source.commits), rig.clock()
    rig.loop.partitions_lost([P0])
    assert rig.clock() == before
    assert len(rig.source.commits) == commits
    assert rig.tracker.records_in_flight == 0
    assert rig.dispatcher.forgotten == [{P0}]


# ---------------------------------------------------------------------- rules swap


def test_reloaded_rules_map_the_next_batch_and_the_old_ones_retire_once(
    write_config: WriteConfig,
) -> None:
    rig = _rig(write_config)
    rig.turn(record(ORDERS, 0, 0, EVENT))
    new = _loaded(write_config, "order_shipped")
    retired: list[str] = []
    rig.loop.use_rules(new.decoders, new.engine, lambda: retired.append("first"))
    assert retired == []  # not before the thread takes them
    rig.turn(record(ORDERS, 0, 1, EVENT))
    assert [d.event.event_type for d in rig.dispatcher.submitted] == [
        "order_update",
        "order_shipped",
    ]
    assert retired == ["first"]
    rig.turn(record(ORDERS, 0, 2, EVENT))
    assert retired == ["first"]


def test_rules_replaced_before_they_were_taken_retire_with_the_last(
    write_config: WriteConfig,
) -> None:
    rig = _rig(write_config)
    retired: list[str] = []
    second = _loaded(write_config, "order_second")
    third = _loaded(write_config, "order_third")
    rig.loop.use_rules(second.decoders, second.engine, lambda: retired.append("second"))
    rig.loop.use_rules(third.decoders, third.engine, lambda: retired.append("third"))
    rig.turn(record(ORDERS, 0, 0, EVENT))
    assert [d.event.event_type for d in rig.dispatcher.submitted] == ["order_third"]
    assert sorted(retired) == ["second", "third"]


# ---------------------------------------------------------------------- drain


def test_the_drain_stops_at_its_deadline_commits_what_finished_and_closes(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = _rig(write_config)
    rig.turn(record(ORDERS, 1, 3, EVENT))  # delivered below, before the stop
    _letter_in_flight(rig)
    rig.finish_all()
    rig.loop.stop()
    before = rig.clock()
    rig.loop.run()
    assert 5.0 <= rig.clock() - before < 5.0 + 0.1
    assert rig.source.paused == {P0, P1, S0}
    assert rig.source.closed
    assert rig.source.commits == [{P1: 4}]  # P0's letter never answered: not committed
    assert "shutdown deadline reached with work in flight" in caplog.text
    assert not rig.health.subscribed


def test_the_drain_ends_as_soon_as_the_work_is_done(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = _rig(write_config)
    _letter_in_flight(rig)
    rig.producer.answer_after(2)
    rig.loop.stop()
    before = rig.clock()
    rig.loop.run()
    assert rig.clock() - before < 1.0
    assert rig.source.commits[-1] == {P0: 8}
    assert "shutdown deadline" not in caplog.text


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop must wait only through the producer's poll (which moves the fake clock)."""

    def refuse(_seconds: float) -> None:
        raise AssertionError("the loop slept on the wall clock")

    monkeypatch.setattr("time.sleep", refuse)


def test_a_hold_that_ends_while_the_consumer_is_full_stays_paused(
    write_config: WriteConfig,
) -> None:
    rig, outage = _outage_rig(write_config, max_pending_records=2)
    rig.turn(record(ORDERS, 0, 5, EVENT))
    outage.down = False
    rig.turn(record(ORDERS, 1, 1, EVENT), record(ORDERS, 1, 2, EVENT))
    assert rig.source.paused == {P0, P1, S0}
    rig.clock.advance(1.0)  # the hold's backoff is over, the bound is not
    rig.turn()
    assert P0 in rig.source.paused
    rig.finish_all()
    rig.turn()
    assert rig.source.paused == set()


def test_partitions_lost_while_paused_fetch_again_once_assigned_again(
    write_config: WriteConfig,
) -> None:
    """librdkafka keeps a partition's pause across a loss and a new assignment (the fake's
    pause set survives too): the loop must resume what it is given again."""
    rig = _rig(write_config, max_pending_records=2)
    rig.turn(record(ORDERS, 0, 0, EVENT), record(ORDERS, 1, 0, EVENT))
    assert rig.source.paused == {P0, P1, S0}
    rig.loop.partitions_lost([P0, P1, S0])
    rig.source.assigned = []
    rig.turn()  # nothing in flight any more: resumes, but there is nothing assigned
    rig.source.assigned = [P0, P1, S0]
    rig.loop.partitions_assigned([P0, P1, S0])
    rig.turn()
    assert rig.source.paused == set()
