"""The long run: hours of ordinary trouble, then every expected event sent exactly once.

    .venv/bin/python -m bench.soak                      # 30 minutes, the defaults below
    .venv/bin/python -m bench.soak --minutes 3 --restart-every 60 --kill-at 50 --kill-at 100

Not a CI test (tests/integration/test_soak_short.py runs a one-minute variant).
What one invocation does, all on 127.0.0.1:

- a Kafka broker of its own (never $KAFKA_BOOTSTRAP_SERVERS: it is restarted), a
  Schema Registry (tests/support/schema_registry.py, in this process) and the
  simulator with the account limit (``--limit``, 300 requests/s) and ``--error-rate``
  (5 %) of its answers 503;
- a producer thread writing ``--rate`` records/s (80 % of the limit) in turn to a
  JSON topic and a Confluent-Avro topic (idempotent, ``acks=all``, so a broker
  restart neither loses nor doubles a record); every record maps to one event whose
  id names the record's sequence number, so the expected ids are exactly the
  records whose delivery the broker confirmed;
- ``vibes-bridge run`` on a configuration file that is atomically replaced every
  ``--reload-every`` seconds, alternating two mappings (:data:`MAPPINGS`); the broker
  is stopped and started on the same ports every ``--restart-every`` seconds; the
  bridge is SIGKILLed and started again at each ``--kill-at`` second;
- every ``--sample-every`` seconds the bridge's resident memory, open files and
  threads are read from /proc. Each bridge process is a segment of its own; for each
  segment the figures after ``--warmup`` seconds of its life are compared: the end
  against the start, the means of successive thirds, a least-squares slope;
- after ``--minutes``, the producer stops, the bridge drains until the simulator has
  sent every expected event (bounded by ``--drain-timeout``), and stops on SIGTERM.

The verdict: every expected id accepted by the simulator, none unexpected, no dead
letter, exit status 0, and each resource flat (growth under ``--max-growth`` %, no
rising trend). Re-sends of an id already accepted (after a SIGKILL the uncommitted
tail is delivered again, by design) are counted and reported, not failed: Vibes
ignores a repeated event id, so no customer is texted twice. The output is a table
and one JSON line; the exit status is 0 only for a passing run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
MEMORY_PROBE = REPO / "bench" / "memory_probe"  # a sitecustomize: see its docstring
sys.path.insert(0, str(REPO))  # the tests' helpers are not installed with the package

from bridge.codecs import load_avro_schema  # noqa: E402
from devtools.avro_encode import encode_avro  # noqa: E402
from devtools.kafka_broker import (  # noqa: E402
    BrokerHandle,
    pause_local_broker,
    resume_local_broker,
    start_local_broker,
    stop_local_broker,
)
from tests.support.bridge_service import (  # noqa: E402
    BridgeProcess,
    metric_sum,
    start_bridge,
)
from tests.support.schema_registry import (  # noqa: E402
    TestSchemaRegistry,
    confluent_frame,
    running_schema_registry,
)
from tests.support.simulator import SimControl, start_sim  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

SCHEMA = {
    "type": "record",
    "name": "SoakShipment",
    "namespace": "bench.soak",
    "fields": [
        {"name": "seq", "type": "long"},
        {"name": "customer_id", "type": "string"},
        {"name": "status", "type": "string"},
    ],
}
CUSTOMERS = 1000
STATUSES = ("PLACED", "SHIPPED", "DELIVERED")
ID_PREFIX = {"json": "soak-j-", "avro": "soak-a-"}
RESOURCES = ("rss_mb", "open_files", "other_files", "threads")
TICK_S = 0.2  # the main loop's look at its schedule
PROGRESS_EVERY_S = 60.0
PRODUCER_MESSAGE_TIMEOUT_MS = 900_000  # longer than any broker restart: no record given up
FLUSH_TIMEOUT_S = 120.0
BROKER_DOWN_TIMEOUT_S = 30.0
EVENTS_FETCH_TIMEOUT_S = 300.0


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SoakSettings:
    """What one run does; the defaults are the issue's long run."""

    seconds: float = 1800.0
    limit: float = 300.0  # the account's requests/s: the simulator's limit, the bridge's budget
    rate: float | None = None  # records/s produced; None: 80 % of the limit
    error_rate: float = 0.05  # share of the simulator's answers that are 503
    latency_ms: float = 20.0
    reload_every: float = 5.0
    restart_every: float = 180.0
    kill_at: tuple[float, ...] | None = None  # seconds; None: at 15 % and 30 % of the run
    sample_every: float = 5.0
    warmup: float = 300.0  # seconds of each bridge process left out of the growth figures
    max_growth_pct: float = 5.0
    drain_timeout: float = 600.0
    partitions: int = 6
    bridge_env: tuple[tuple[str, str], ...] = ()  # extra environment of each bridge process
    trace_memory: bool = False  # bench/memory_probe in each bridge: Python heap vs malloc vs RSS

    @property
    def records_per_s(self) -> float:
        return self.rate if self.rate is not None else 0.8 * self.limit

    @property
    def kills(self) -> tuple[float, ...]:
        if self.kill_at is not None:
            return tuple(sorted(self.kill_at))
        return (0.15 * self.seconds, 0.30 * self.seconds)


@dataclass(frozen=True)
class Names:
    """The run's topics and group (fresh names, though the broker is the run's own)."""

    json_topic: str
    avro_topic: str
    dead_letters: str
    group: str
    budget: str

    @classmethod
    def fresh(cls) -> Names:
        suffix = uuid.uuid4().hex[:8]
        return cls(
            f"soak.orders.{suffix}",
            f"soak.shipments.{suffix}",
            f"soak.dlq.{suffix}",
            f"soak-{suffix}",
            f"soak.budget.{suffix}",
        )


# --------------------------------------------------------------------------- the two mappings


def _rules(names: Names, variant: str) -> list[dict[str, Any]]:
    """One rule per topic; both variants give every record the same event id and type.

    Variant "b" reaches the same events another way (a filter that always holds,
    templates instead of paths), so a reload really swaps the engine; ``debug_data``
    says which mapping made an event, which shows both were in force.
    """
    rules = []
    for kind, topic in (("json", names.json_topic), ("avro", names.avro_topic)):
        rule: dict[str, Any] = {
            "name": f"soak-{kind}",
            "topic": topic,
            "event_type": f"soak_{kind}",
            "event_id": {"template": ID_PREFIX[kind] + "{seq}"},
            "recipient": {"external_person_id": "customer_id"},
            "event_data": {"seq": "seq", "status": "status"},
            "debug_data": {"mapping": {"value": variant}},
        }
        if variant == "b":
            rule["when"] = "seq >= `0`"
            rule["event_data"] = {"seq": "seq", "status": {"template": "{status}"}}
        rules.append(rule)
    return rules


def _sources(names: Names, variant: str, registry_url: str, schema: Path) -> list[dict[str, Any]]:
    """Both variants read the same topics (the topic set only changes with a restart, and a
    topic dropped by a reload has its records skipped); the Confluent-Avro source resolves
    to the reader schema file in "a" and reads with the writer schema alone in "b"."""
    avro: dict[str, Any] = {
        "topic": names.avro_topic,
        "format": "confluent-avro",
        "schema_registry": registry_url,
    }
    if variant == "a":
        avro["schema"] = str(schema)
    return [{"topic": names.json_topic, "format": "json"}, avro]


def render_config(
    variant: str,
    *,
    names: Names,
    bootstrap: str,
    sim_url: str,
    registry_url: str,
    schema: Path,
    limit: float,
) -> dict[str, Any]:
    """The whole file for one variant; "b" also plans 95 % of the limit (a live change)."""
    return {
        "version": 1,
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": names.group,
            "config": {"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000},
        },
        "vibes": {
            "base_url": sim_url,
            "company_key": "demo",
            "username": "demo",
            "password": "demo",  # the simulator's documented demo credential
            "timeout_seconds": 5,
            "requests_per_second": limit if variant == "a" else round(0.95 * limit, 3),
        },
        "delivery": {"shutdown_timeout_seconds": 10},
        "management": {"host": "127.0.0.1", "port": 0},
        "dead_letter": {"topic": names.dead_letters},
        "fleet": {"topic": names.budget},
        "sources": _sources(names, variant, registry_url, schema),
        "rules": _rules(names, variant),
    }


class ConfigSwapper:
    """The one configuration file, replaced atomically (temp file + os.replace) by turns."""

    def __init__(self, path: Path, variants: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self._texts = {name: _yaml_text(document) for name, document in variants.items()}
        self._order = sorted(self._texts)
        self.swaps = 0
        self._write(self._order[0])

    def swap(self) -> None:
        self.swaps += 1
        self._write(self._order[self.swaps % len(self._order)])

    def _write(self, variant: str) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{variant}.tmp")
        temporary.write_text(self._texts[variant], encoding="utf-8")
        os.replace(temporary, self.path)


def _yaml_text(document: dict[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stream:
        yaml.dump(document, stream)
        stream.seek(0)
        return stream.read()


# --------------------------------------------------------------------------- producing


@dataclass
class Produced:
    """What the broker confirmed, and what it refused, as event ids (guarded by ``lock``)."""

    confirmed: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    attempted: int = 0
    unflushed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class PacedProducer(threading.Thread):
    """Records at a steady rate, alternating the JSON and the Confluent-Avro topic.

    The pace is kept by owing ``rate * elapsed`` records and producing what is owed
    each round; ``poll`` both serves the delivery reports and waits the round out.
    A full local queue (the broker is down long) only defers records, never drops.
    """

    def __init__(
        self,
        bootstrap: str,
        names: Names,
        rate: float,
        frame_avro: Callable[[dict[str, Any]], bytes],
        log_path: Path,
    ) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self._names = names
        self._rate = rate
        self._frame_avro = frame_avro
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "message.timeout.ms": PRODUCER_MESSAGE_TIMEOUT_MS,
                # Every broker restart makes librdkafka complain for seconds: into a file.
                "logger": file_logger("bench.soak.producer", log_path),
            }
        )
        self.stopping = threading.Event()
        self.produced = Produced()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._produce_until_stopped()
        except BaseException as exc:  # reported by the main thread, never lost
            self.error = exc
        finally:
            self.produced.unflushed = self._producer.flush(FLUSH_TIMEOUT_S)

    def _produce_until_stopped(self) -> None:
        started = time.monotonic()
        seq = 0
        while not self.stopping.is_set():
            owed = int((time.monotonic() - started) * self._rate) - seq
            for _ in range(owed):
                if not self._produce(seq):
                    break
                seq += 1
            self._producer.poll(0.05)

    def _produce(self, seq: int) -> bool:
        kind = "json" if seq % 2 == 0 else "avro"
        customer = f"c-{seq % CUSTOMERS}"
        document: dict[str, Any] = {
            "seq": seq,
            "customer_id": customer,
            "status": STATUSES[seq % len(STATUSES)],
        }
        topic = self._names.json_topic if kind == "json" else self._names.avro_topic
        value = json.dumps(document).encode() if kind == "json" else self._frame_avro(document)
        event_id = f"{ID_PREFIX[kind]}{seq}"
        try:
            self._producer.produce(
                topic,
                value=value,
                key=customer.encode(),
                on_delivery=lambda error, _message: self._delivered(event_id, error),
            )
        except BufferError:
            return False
        with self.produced.lock:
            self.produced.attempted += 1
        return True

    def _delivered(self, event_id: str, error: KafkaError | None) -> None:
        with self.produced.lock:
            if error is None:
                self.produced.confirmed.add(event_id)
            else:
                self.produced.failed.append(event_id)


def file_logger(name: str, path: Path) -> logging.Logger:
    """A logger writing only to ``path`` (librdkafka's connection errors are expected here)."""
    logger = logging.getLogger(name)
    logger.propagate = False
    for handler in logger.handlers:  # a previous run's file, in the same process (tests)
        handler.close()
    logger.handlers = [logging.FileHandler(path, encoding="utf-8")]
    return logger


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Sample:
    """One look at the bridge: seconds since its segment began, and its resources.

    ``other_files`` are the descriptors that are not sockets (files, pipes, eventfds,
    inotify, epoll): sockets come and go with the Vibes connection pool (up to
    ``delivery.max_in_flight``), the others should not move at all, so a leak of
    them stands out from the pool's swing.
    """

    segment: int
    at: float
    rss_mb: float
    open_files: int
    other_files: int
    threads: int


def read_process(pid: int) -> tuple[float, int, int, int] | None:
    """Resident MB, open descriptors (all, not sockets) and threads; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        targets = [_link(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # a zombie: killed, not yet reaped; nothing left to measure
        return None
    others = sum(1 for target in targets if not target.startswith("socket:"))
    return (
        int(fields["VmRSS"].split()[0]) / 1024,
        len(targets),
        others,
        int(fields["Threads"]),
    )


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except FileNotFoundError:  # closed between the listing and the look
        return "socket:closed"


class Sampler(threading.Thread):
    """Samples whichever bridge process runs now; a new process starts a new segment.

    A process being stopped or killed is let go first (:meth:`let_go`): while it
    shuts down its threads and descriptors fall, which is no figure of its life.
    """

    def __init__(self, every: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self._every = every
        self._lock = threading.Lock()
        self._segments = 0
        self._current: tuple[int, int, float] | None = None  # segment, pid, began
        self.samples: list[Sample] = []
        self.rounds = 0
        self.stopping = threading.Event()

    def follow(self, pid: int) -> None:
        with self._lock:
            self._current = (self._segments, pid, time.monotonic())
            self._segments += 1

    def let_go(self) -> None:
        """Sample the current process no more; a look already under way is dropped."""
        with self._lock:
            self._current = None

    def run(self) -> None:
        while not self.stopping.wait(self._every):
            with self._lock:
                current = self._current
            if current is not None:
                figures = read_process(current[1])
                with self._lock:
                    if figures is not None and self._current == current:
                        began = current[2]
                        self.samples.append(Sample(current[0], time.monotonic() - began, *figures))
            self.rounds += 1


@dataclass(frozen=True)
class Growth:
    """One resource over one segment's samples after the warm-up."""

    samples: int
    start: float
    end: float
    growth_pct: float
    thirds: tuple[float, float, float]
    slope_per_min: float
    rising: bool

    def flat(self, max_growth_pct: float) -> bool:
        return self.growth_pct < max_growth_pct and not self.rising


MIN_TREND_SAMPLES = 6


def growth(values: Sequence[float]) -> Growth | None:
    """Start and end (medians of the first and last few samples, which a single GC or
    a burst cannot swing), the means of successive thirds, and the least-squares slope.

    "Rising" is the monotonic trend the issue names: each third's mean above the one
    before by more than 1 % of the first (integer counts such as threads must really
    climb, not wobble by one).
    """
    if len(values) < MIN_TREND_SAMPLES:
        return None
    edge = max(1, len(values) // 10)
    start, end = statistics.median(values[:edge]), statistics.median(values[-edge:])
    third = len(values) // 3
    first, middle, last = values[:third], values[third : 2 * third], values[2 * third :]
    means = (statistics.fmean(first), statistics.fmean(middle), statistics.fmean(last))
    noise = 0.01 * max(means[0], 1e-9)
    rising = means[1] - means[0] > noise and means[2] - means[1] > noise
    return Growth(
        samples=len(values),
        start=start,
        end=end,
        growth_pct=(end - start) / max(start, 1e-9) * 100,
        thirds=means,
        slope_per_min=0.0,
        rising=rising,
    )


def segment_growth(
    samples: Sequence[Sample], segment: int, warmup: float
) -> dict[str, Growth | None]:
    """Each resource's growth in ``segment`` after ``warmup`` seconds of the process's life."""
    kept = [s for s in samples if s.segment == segment and s.at >= warmup]
    result: dict[str, Growth | None] = {}
    for resource in RESOURCES:
        values = [float(getattr(s, resource)) for s in kept]
        found = growth(values)
        if found is not None and len({s.at for s in kept}) > 1:
            slope = statistics.linear_regression([s.at for s in kept], values).slope
            found = replace(found, slope_per_min=slope * 60)
        result[resource] = found
    return result


# --------------------------------------------------------------------------- the world


@contextmanager
def own_broker() -> Iterator[BrokerHandle]:
    """A broker of this run's own: the run stops and restarts it."""
    handle = start_local_broker()
    try:
        yield handle
    finally:
        stop_local_broker(handle)


def create_topics(bootstrap: str, names: Names, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = {names.json_topic: partitions, names.avro_topic: partitions, names.dead_letters: 1}
    futures = admin.create_topics([NewTopic(topic, count, 1) for topic, count in wanted.items()])
    for future in futures.values():
        future.result(timeout=60)


def _port_closed(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, int(port))) != 0


def restart_broker(handle: BrokerHandle) -> None:
    """Stop the JVM (data kept) and start it again on the same ports; returns once it answers."""
    pause_local_broker(handle)
    wait_until(lambda: _port_closed(handle.bootstrap), BROKER_DOWN_TIMEOUT_S, "the broker down")
    resume_local_broker(handle)


def high_watermark(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"soak-{uuid.uuid4().hex}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1])
    finally:
        consumer.close()


# --------------------------------------------------------------------------- the run


@dataclass
class Chaos:
    """What was done to the bridge and the broker, and what each process said before dying."""

    swaps: int = 0
    broker_restarts: int = 0
    broker_restart_s: list[float] = field(default_factory=list)
    kills: int = 0
    unexpected_exits: int = 0
    reloads_ok: float = 0.0
    reloads_failed: float = 0.0
    dead_letters_metric: float = 0.0

    def count_metrics(self, bridge: BridgeProcess) -> None:
        """Add a process's reload and dead-letter counters (read before it is killed)."""
        try:
            text = bridge.get("/metrics").text
        except httpx.HTTPError:
            return  # a process that no longer answers: its counters are gone with it
        self.reloads_ok += metric_sum(text, "vibes_bridge_config_reloads_total", result="success")
        self.reloads_failed += metric_sum(
            text, "vibes_bridge_config_reloads_total", result="failure"
        )
        self.dead_letters_metric += metric_sum(text, "vibes_bridge_dead_letters_total")


@dataclass
class SoakResult:
    """Everything a run found; :attr:`passed` is the verdict."""

    settings: dict[str, Any]
    produced: int
    producer_failures: int
    unflushed: int
    expected: int
    accepted_distinct: int
    missing: int
    unexpected: int
    repeats: int
    sim_stats: dict[str, int]
    events_by_mapping: dict[str, int]
    dead_letters: int
    exit_status: int | None
    chaos: Chaos
    segments: list[dict[str, Growth | None]]
    segment_seconds: list[float]
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_json(self, *, with_samples: bool = False) -> dict[str, Any]:
        """Everything but the raw samples (hundreds of them) unless asked for."""
        document = asdict(self)
        if not with_samples:
            del document["samples"]
        document["passed"] = self.passed
        return document


class SoakRun:
    """The processes of one run and the chaos schedule; :meth:`run` returns the result."""

    def __init__(
        self, settings: SoakSettings, workdir: Path, broker: BrokerHandle | None = None
    ) -> None:
        self.settings = settings
        self.given_broker = broker
        self.workdir = workdir
        self.names = Names.fresh()
        self.chaos = Chaos()
        self.sampler = Sampler(settings.sample_every)
        self.segment_began: list[float] = []
        self.segment_seconds: list[float] = []
        self.bridge: BridgeProcess | None = None

    def run(self) -> SoakResult:
        with ExitStack() as stack:
            broker = self.given_broker or stack.enter_context(own_broker())
            registry = stack.enter_context(running_schema_registry())
            create_topics(broker.bootstrap, self.names, self.settings.partitions)
            sim_url, control = self._simulator(stack)
            swapper = self._configs(broker.bootstrap, sim_url, registry)
            producer = self._producer(broker.bootstrap, registry)
            stack.callback(self._stop_bridge)
            self.sampler.start()
            stack.callback(self.sampler.stopping.set)
            producer.start()
            stack.callback(producer.stopping.set)
            self._start_bridge(swapper.path)
            self._chaos(swapper, broker, lambda: self._progress(control, producer))
            producer.stopping.set()
            producer.join(FLUSH_TIMEOUT_S + 30)
            exit_status = self._drain(control, producer)
            return self._result(broker.bootstrap, control, sim_url, producer, exit_status)
        raise AssertionError("unreachable")  # ExitStack does not swallow exceptions here

    # -- set-up

    def _simulator(self, stack: ExitStack) -> tuple[str, SimControl]:
        expected_max = int(self.settings.seconds * self.settings.records_per_s * 2) + 100_000
        sim = start_sim(
            [
                "--latency-ms",
                str(self.settings.latency_ms),
                "--rate-limit",
                str(self.settings.limit),
                "--error-rate",
                str(self.settings.error_rate),
                # Every accepted event and id kept, so the final check is a set equality.
                "--max-events",
                str(expected_max),
                "--max-event-ids",
                str(expected_max),
                "--log-level",
                "warning",
            ],
            self.workdir / "sim.log",
        )
        stack.callback(sim.stop)
        control = SimControl(sim.url)
        stack.callback(control.close)
        return sim.url, control

    def _configs(self, bootstrap: str, sim_url: str, registry: TestSchemaRegistry) -> ConfigSwapper:
        schema_path = self.workdir / "soak_shipment.avsc"
        schema_path.write_text(json.dumps(SCHEMA), encoding="utf-8")
        variants = {
            variant: render_config(
                variant,
                names=self.names,
                bootstrap=bootstrap,
                sim_url=sim_url,
                registry_url=registry.url,
                schema=schema_path,
                limit=self.settings.limit,
            )
            for variant in ("a", "b")
        }
        return ConfigSwapper(self.workdir / "bridge.yaml", variants)

    def _producer(self, bootstrap: str, registry: TestSchemaRegistry) -> PacedProducer:
        schema_path = self.workdir / "soak_shipment.avsc"
        parsed = load_avro_schema(schema_path)
        schema_id = registry.register(f"{self.names.avro_topic}-value", schema_path.read_text())

        def frame(document: dict[str, Any]) -> bytes:
            return confluent_frame(schema_id, encode_avro(parsed, document))

        return PacedProducer(
            bootstrap,
            self.names,
            self.settings.records_per_s,
            frame,
            self.workdir / "producer.log",
        )

    # -- the bridge

    def _start_bridge(self, config: Path) -> None:
        number = len(self.segment_began)
        self.bridge = start_bridge(
            config, self.workdir / f"bridge-{number}.log", env=self._bridge_env()
        )
        self.segment_began.append(time.monotonic())
        self.sampler.follow(self.bridge.proc.pid)

    def _bridge_env(self) -> dict[str, str]:
        env = dict(self.settings.bridge_env)
        if self.settings.trace_memory:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(MEMORY_PROBE), os.environ.get("PYTHONPATH", "")])
            )
            env["BRIDGE_MEMORY_PROBE"] = str(self.workdir)
        return env

    def _end_segment(self) -> None:
        self.segment_seconds.append(time.monotonic() - self.segment_began[-1])

    def _kill_and_restart(self, config: Path) -> None:
        assert self.bridge is not None
        self.chaos.count_metrics(self.bridge)
        self.sampler.let_go()
        self.bridge.stop(signal.SIGKILL)
        self._end_segment()
        self.chaos.kills += 1
        self._start_bridge(config)

    def _stop_bridge(self) -> int | None:
        """SIGTERM the current bridge (bounded); its exit status, None if none ran."""
        bridge, self.bridge = self.bridge, None
        if bridge is None:
            return None
        if bridge.running:
            self.chaos.count_metrics(bridge)
        self.sampler.let_go()
        status = bridge.stop()
        self._end_segment()
        return status

    # -- the schedule

    def _chaos(
        self, swapper: ConfigSwapper, broker: BrokerHandle, progress: Callable[[], None]
    ) -> None:
        """Reloads, broker restarts and kills until the run's time is up, one at a time."""
        settings = self.settings
        began = time.monotonic()
        next_progress = began + PROGRESS_EVERY_S
        ends = began + settings.seconds
        next_reload = began + settings.reload_every
        next_restart = began + settings.restart_every
        kills = [began + at for at in settings.kills if at < settings.seconds]
        while (now := time.monotonic()) < ends:
            self._revive_if_dead(swapper.path)
            if now >= next_progress:
                progress()
                next_progress = now + PROGRESS_EVERY_S
            if kills and now >= kills[0]:
                kills.pop(0)
                self._kill_and_restart(swapper.path)
            elif now >= next_restart:
                started = time.monotonic()
                restart_broker(broker)
                self.chaos.broker_restarts += 1
                self.chaos.broker_restart_s.append(time.monotonic() - started)
                next_restart = time.monotonic() + settings.restart_every
            elif now >= next_reload:
                swapper.swap()
                self.chaos.swaps += 1
                next_reload = now + settings.reload_every
            else:
                self.sampler.stopping.wait(TICK_S)  # the schedule's pace, not a synchronisation

    def _progress(self, control: SimControl, producer: PacedProducer) -> None:
        """One line a minute, so a half-hour run is not silent."""
        last = self.sampler.samples[-1] if self.sampler.samples else None
        looks = (
            f"rss {last.rss_mb:.0f} MB, files {last.open_files} ({last.other_files} not"
            f" sockets), threads {last.threads}"
            if last is not None
            else "no sample yet"
        )
        with producer.produced.lock:
            confirmed = len(producer.produced.confirmed)
        print(
            f"[{time.strftime('%H:%M:%S')}] confirmed {confirmed:,}, sent"
            f" {control.stats()['sent']:,}; swaps {self.chaos.swaps}, broker restarts"
            f" {self.chaos.broker_restarts}, kills {self.chaos.kills}; {looks}",
            flush=True,
        )

    def _revive_if_dead(self, config: Path) -> None:
        """A bridge that exited by itself is a finding: counted, and started again."""
        if self.bridge is not None and not self.bridge.running:
            self.chaos.unexpected_exits += 1
            self._end_segment()
            self._start_bridge(config)

    def _drain(self, control: SimControl, producer: PacedProducer) -> int | None:
        """Wait until every confirmed record's event was sent (bounded), then SIGTERM."""
        expected = len(producer.produced.confirmed)

        def drained() -> bool:
            self._revive_if_dead(self.workdir / "bridge.yaml")
            return control.stats()["sent"] >= expected

        with suppress(AssertionError):  # a short count is reported by the result, not raised
            wait_until(drained, self.settings.drain_timeout, "every expected event sent")
        return self._stop_bridge()

    # -- the verdict

    def _result(
        self,
        bootstrap: str,
        control: SimControl,
        sim_url: str,
        producer: PacedProducer,
        exit_status: int | None,
    ) -> SoakResult:
        self.sampler.stopping.set()
        self.sampler.join(self.settings.sample_every + 5)
        events = httpx.get(f"{sim_url}/_sim/events", timeout=EVENTS_FETCH_TIMEOUT_S).json()
        accepted = {event["event_id"] for event in events if event["outcome"] == "sent"}
        by_mapping = Counter(
            str(event["body"].get("debug_data", {}).get("mapping"))
            for event in events
            if event["outcome"] == "sent"
        )
        stats = control.stats()
        produced = producer.produced
        expected = produced.confirmed
        segments = [
            segment_growth(self.sampler.samples, number, self.settings.warmup)
            for number in range(len(self.segment_began))
        ]
        result = SoakResult(
            settings=asdict(self.settings),
            produced=produced.attempted,
            producer_failures=len(produced.failed),
            unflushed=produced.unflushed,
            expected=len(expected),
            accepted_distinct=len(accepted),
            missing=len(expected - accepted),
            unexpected=len(accepted - expected),
            repeats=stats["duplicates"],
            sim_stats=stats,
            events_by_mapping=dict(by_mapping),
            dead_letters=high_watermark(bootstrap, self.names.dead_letters),
            exit_status=exit_status,
            chaos=self.chaos,
            segments=segments,
            segment_seconds=self.segment_seconds,
            samples=list(self.sampler.samples),
        )
        result.problems = problems(result, producer.error, self.settings.max_growth_pct)
        return result


def problems(result: SoakResult, producer_error: BaseException | None, limit: float) -> list[str]:
    """Every way the run fell short, in words (no ids, no person data)."""
    found = []
    if producer_error is not None:
        found.append(f"the producer failed: {type(producer_error).__name__}")
    if result.producer_failures or result.unflushed:
        found.append(
            f"{result.producer_failures} records refused and {result.unflushed} unflushed"
            " by the broker (their events cannot be expected)"
        )
    if result.missing or result.unexpected:
        found.append(f"{result.missing} expected events missing, {result.unexpected} unexpected")
    if result.accepted_distinct != result.expected:
        found.append(f"{result.accepted_distinct} distinct accepted, {result.expected} expected")
    if result.dead_letters:
        found.append(f"{result.dead_letters} records dead-lettered")
    if result.exit_status != 0:
        found.append(f"the last bridge exited with {result.exit_status}")
    if result.chaos.unexpected_exits:
        found.append(f"the bridge exited by itself {result.chaos.unexpected_exits} times")
    for number, segment in enumerate(result.segments):
        for resource, figures in segment.items():
            if figures is not None and not figures.flat(limit):
                found.append(
                    f"segment {number}: {resource} grew {figures.growth_pct:+.1f} %"
                    f" (thirds {', '.join(f'{m:.1f}' for m in figures.thirds)})"
                )
    return found


# --------------------------------------------------------------------------- report


def report(result: SoakResult) -> str:
    """The human table: delivery first, then one row per segment and resource."""
    chaos = result.chaos
    restarts = ", ".join(f"{s:.1f}" for s in chaos.broker_restart_s) or "none"
    lines = [
        f"records produced {result.produced:,}; broker-confirmed (expected events)"
        f" {result.expected:,}; refused {result.producer_failures}; unflushed {result.unflushed}",
        f"simulator: distinct accepted {result.accepted_distinct:,}; missing {result.missing};"
        f" unexpected {result.unexpected}; repeats (re-sent, ignored by Vibes) {result.repeats:,};"
        f" 503s {result.sim_stats.get('faults_503', 0):,}; 429s"
        f" {result.sim_stats.get('rate_limited', 0):,}",
        f"events by mapping: {result.events_by_mapping}; dead letters {result.dead_letters};"
        f" last exit status {result.exit_status}",
        f"config swaps {chaos.swaps}; reloads counted by the bridges {chaos.reloads_ok:.0f}"
        f" ok / {chaos.reloads_failed:.0f} failed; broker restarts {chaos.broker_restarts}"
        f" (seconds each: {restarts}); kills {chaos.kills}; unexpected exits"
        f" {chaos.unexpected_exits}",
        "",
        "| segment (s) | resource | samples | start | end | growth | thirds (means) "
        "| slope /min | flat |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    limit = result.settings["max_growth_pct"]
    for number, segment in enumerate(result.segments):
        length = result.segment_seconds[number] if number < len(result.segment_seconds) else 0
        for resource, figures in segment.items():
            head = f"| {number} ({length:.0f}) | {resource} |"
            if figures is None:
                lines.append(f"{head} too few after the warm-up | | | | | | |")
                continue
            thirds = " / ".join(f"{m:.1f}" for m in figures.thirds)
            lines.append(
                f"{head} {figures.samples} | {figures.start:.1f} | {figures.end:.1f} |"
                f" {figures.growth_pct:+.1f} % | {thirds} | {figures.slope_per_min:+.3f} |"
                f" {'yes' if figures.flat(limit) else 'NO'} |"
            )
    lines.append("")
    lines.append("PASSED" if result.passed else "FAILED: " + "; ".join(result.problems))
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}, Python {platform.python_version()}"


def run_soak(
    settings: SoakSettings, workdir: Path | None = None, broker: BrokerHandle | None = None
) -> SoakResult:
    """One run in ``workdir`` (configs, logs), or in a temporary directory removed after.

    ``broker``: a local broker this run may stop and restart (a test's own); by
    default the run starts one and stops it at the end.
    """
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return SoakRun(settings, workdir, broker).run()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        return SoakRun(settings, Path(tmp), broker).run()


def parse_settings(argv: Sequence[str] | None) -> tuple[SoakSettings, Path | None]:
    defaults = SoakSettings()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--minutes", type=float, default=defaults.seconds / 60, help="length of the run")
    add("--limit", type=float, default=defaults.limit, help="the account's requests/s")
    add("--rate", type=float, help="records/s produced (default: 80 %% of --limit)")
    add("--error-rate", type=float, default=defaults.error_rate, help="simulator 503 share")
    add("--latency-ms", type=float, default=defaults.latency_ms)
    add("--reload-every", type=float, default=defaults.reload_every, help="seconds")
    add("--restart-every", type=float, default=defaults.restart_every, help="seconds (broker)")
    add(
        "--kill-at",
        type=float,
        action="append",
        help="second of the run to SIGKILL the bridge at; repeat (default: 15 %% and 30 %%)",
    )
    add("--sample-every", type=float, default=defaults.sample_every, help="seconds")
    add("--warmup", type=float, default=defaults.warmup, help="seconds of each process ignored")
    add("--max-growth", type=float, default=defaults.max_growth_pct, help="per cent")
    add("--drain-timeout", type=float, default=defaults.drain_timeout, help="seconds")
    add(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment of each bridge process (e.g. MALLOC_ARENA_MAX=2); repeat",
    )
    add(
        "--trace-memory",
        action="store_true",
        help="probe each bridge's Python heap, malloc and RSS (bench/memory_probe; costs CPU)",
    )
    add("--keep-logs", type=Path, help="write configs and logs here (default: removed after)")
    args = parser.parse_args(argv)
    settings = SoakSettings(
        seconds=args.minutes * 60,
        limit=args.limit,
        rate=args.rate,
        error_rate=args.error_rate,
        latency_ms=args.latency_ms,
        reload_every=args.reload_every,
        restart_every=args.restart_every,
        kill_at=tuple(args.kill_at) if args.kill_at else None,
        sample_every=args.sample_every,
        warmup=args.warmup,
        max_growth_pct=args.max_growth,
        drain_timeout=args.drain_timeout,
        bridge_env=tuple(_name_value(text) for text in args.env),
        trace_memory=args.trace_memory,
    )
    return settings, args.keep_logs


def _name_value(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise SystemExit(f"--env wants NAME=VALUE, got {text!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    settings, keep_logs = parse_settings(argv)
    print(f"machine at start: {machine()}", flush=True)
    result = run_soak(settings, keep_logs)
    print(f"machine at end: {machine()}")
    print(report(result))
    print(json.dumps(result.as_json(), default=str))
    if keep_logs is not None:  # the raw samples too, for a plot or a second look
        full = json.dumps(result.as_json(with_samples=True), default=str, indent=1)
        (keep_logs / "result.json").write_text(full, encoding="utf-8")
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
