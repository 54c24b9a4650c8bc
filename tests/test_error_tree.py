"""One error tree: what one module raises and another catches is a BridgeError, and
confluent-kafka's exceptions stop at bridge/kafka (bridge/errors.py draws the tree)."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

import bridge
from bridge.errors import BridgeError, KafkaCallFailed, KafkaFailure
from bridge.kafka.budget_topic import BudgetLink, BudgetTopicUnavailable
from bridge.kafka.config import ConfigValue
from bridge.kafka.consumer import ConsumerTrouble, KafkaSource, record_or_trouble
from bridge.kafka.failures import translates
from bridge.kafka.messages import MalformedMessage
from bridge.kafka.producer import AcknowledgedProducer, DeadLetterProducer, ProduceFailed
from bridge.kafka.reader import BoundedReader, TopicUnavailable
from bridge.kafka.topic_limits import read_topic_limits
from tests.support.modules import bridge_modules

BRIDGE = Path(bridge.__file__).resolve().parent

# Exception classes other modules see that are deliberately not BridgeErrors, and why.
DELIBERATE = {
    # Callers read files through one OSError path (missing, unreadable, not a file).
    "bridge.config.files.NotRegularFile": "an OSError, caught with the other file errors",
    # Value parsers of the mapping package: compiled rules turn them into config
    # Problems (load time) or a MappingError (per record) before they leave it.
    "bridge.mapping.jmes.ExpressionSyntaxError": "a parser's ValueError, internal to mapping",
    "bridge.mapping.values.ValueSpecError": "a parser's ValueError, internal to mapping",
    "bridge.mapping.conversions.ConversionError": "a parser's ValueError, internal to mapping",
    "bridge.mapping.templates.TemplateSyntaxError": "a parser's ValueError, internal to mapping",
    # Parking's signal from the limiter and deliverer to the dispatcher: the event is to
    # be parked, not that anything failed (docs/isolation.md).
    "bridge.delivery.ratelimit.Withdrawn": "a control-flow signal (park this event)",
    # The simulator stands in for Vibes; its errors are its own HTTP answers.
    "bridge.sim.faults.SettingsError": "the simulator's, answered as HTTP 400",
    "bridge.sim.callbacks.RegistrationError": "the simulator's, answered as HTTP 400",
    "bridge.sim.server.ListenError": "the simulator's, reported by sim_cmd",
}


def exception_classes() -> list[type[BaseException]]:
    """Every exception class defined (not just imported) in a bridge module."""
    found: dict[str, type[BaseException]] = {}
    for module in bridge_modules():
        name = module.__name__
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return list(found.values())


def source_of(module: str) -> Path:
    path = BRIDGE.parent / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def modules_naming(name: str, outside: str) -> list[str]:
    """Modules other than ``outside`` (and re-exporting ``__init__``s) that name ``name``."""
    own = source_of(outside)
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return [
        str(path.relative_to(BRIDGE.parent))
        for path in BRIDGE.rglob("*.py")
        if path != own
        and path.name != "__init__.py"
        and pattern.search(path.read_text(encoding="utf-8"))
    ]


def test_the_walk_finds_the_exception_classes() -> None:
    # A walk that found nothing would make the membership test vacuous.
    names = {cls.__name__ for cls in exception_classes()}
    assert {"BridgeError", "TopicUnavailable", "InvalidCallback", "SettingsError"} <= names
    assert "RegistryOutage" in names  # bridge/service, a namespace package, is walked too


def test_every_exception_another_module_sees_is_in_the_tree() -> None:
    outside: list[str] = []
    for cls in exception_classes():
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        users = modules_naming(cls.__name__, cls.__module__)
        if users and not issubclass(cls, BridgeError) and qualified not in DELIBERATE:
            outside.append(f"{qualified} (seen by {', '.join(users)})")
    assert outside == [], "make these BridgeErrors, or list them in DELIBERATE with a reason"


def test_every_deliberate_exception_still_exists_and_is_outside_the_tree() -> None:
    classes = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in exception_classes()}
    for qualified in DELIBERATE:
        assert qualified in classes, f"{qualified} is gone: drop it from DELIBERATE"
        assert not issubclass(classes[qualified], BridgeError), f"{qualified} joined the tree"


@pytest.mark.parametrize(
    "cls", [TopicUnavailable, BudgetTopicUnavailable, ProduceFailed, MalformedMessage]
)
def test_the_kafka_edges_own_exceptions_are_its_branch(cls: type[Exception]) -> None:
    assert issubclass(cls, KafkaFailure)
    assert issubclass(cls, BridgeError)


def test_no_module_outside_bridge_kafka_names_a_confluent_kafka_exception() -> None:
    pattern = re.compile(r"\bKafka(Exception|Error)\b")
    named = [
        str(path.relative_to(BRIDGE.parent))
        for path in BRIDGE.rglob("*.py")
        if path.parent.name != "kafka" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert named == []


def test_the_check_above_sees_the_kafka_edge() -> None:
    consumer = (BRIDGE / "kafka" / "consumer.py").read_text(encoding="utf-8")
    assert re.search(r"\bKafkaException\b", consumer)


REFUSED: dict[str, ConfigValue] = {
    "bootstrap.servers": "127.0.0.1:9",
    "group.id": "error-tree",
    "no.such.property": "1",  # librdkafka refuses the client: KafkaException(_INVALID_ARG)
}


def build_source() -> object:
    return KafkaSource(REFUSED, ["t"], listener=None)  # type: ignore[arg-type]


def build_acknowledged_producer() -> object:
    loop = asyncio.new_event_loop()
    try:
        return AcknowledgedProducer(REFUSED, loop)
    finally:
        loop.close()


def open_budget_link() -> object:
    link = BudgetLink("t", consumer_settings=REFUSED, producer_settings=REFUSED, group_id="g")
    link.open()
    return link


CLIENTS: dict[str, Callable[[], object]] = {
    "the source consumer": build_source,
    "replay's reader": lambda: BoundedReader(REFUSED, "t"),
    "the dead-letter producer": lambda: DeadLetterProducer(REFUSED, "t"),
    "the callback producer": build_acknowledged_producer,
    "the budget topic": open_budget_link,
    "the topic limits": lambda: read_topic_limits(REFUSED, ["t"]),
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_client_librdkafka_refuses_raises_the_bridges_error(client: str) -> None:
    with pytest.raises(KafkaCallFailed) as refused:
        CLIENTS[client]()
    assert refused.value.code == "_INVALID_ARG"
    assert isinstance(refused.value.__cause__, KafkaException)  # kept for the traceback


def test_a_method_librdkafka_refuses_raises_the_bridges_error() -> None:
    settings = {k: v for k, v in REFUSED.items() if k != "no.such.property"}
    source = KafkaSource(settings, ["error-tree"], listener=None)  # type: ignore[arg-type]
    try:
        with pytest.raises(KafkaCallFailed, match=r"KafkaSource\.seek: _UNKNOWN_PARTITION"):
            source.seek(("not-assigned", 0), 5)
    finally:
        source.close()


def test_a_fatal_fetch_error_is_raised_as_the_bridges_error_with_its_flags() -> None:
    fatal = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    with pytest.raises(KafkaCallFailed) as raised:
        record_or_trouble(Message(topic="t", partition=0, offset=1, error=fatal))
    assert (raised.value.code, raised.value.fatal) == ("_FENCED", True)


def test_a_fetch_error_that_is_not_fatal_stays_a_trouble() -> None:
    passing = KafkaError(KafkaError._TRANSPORT, "down", retriable=True)
    trouble = record_or_trouble(Message(topic="t", partition=0, offset=1, error=passing))
    assert trouble == ConsumerTrouble("_TRANSPORT", True)


@pytest.mark.parametrize(
    ("raised", "code", "retriable"),
    [
        (KafkaException(KafkaError(KafkaError._TIMED_OUT, retriable=True)), "_TIMED_OUT", 1),
        (
            KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)),
            "UNKNOWN_TOPIC_OR_PART",
            False,
        ),
        (KafkaException(), "kafka", 0),  # no KafkaError inside: still the bridge's error
    ],
)
def test_translates_keeps_the_name_and_the_flags(
    raised: KafkaException, code: str, retriable: int
) -> None:
    @translates
    def call() -> None:
        raise raised

    with pytest.raises(KafkaCallFailed) as failed:
        call()
    assert (failed.value.code, failed.value.retriable) == (code, bool(retriable))
    assert failed.value.__cause__ is raised


def test_translates_lets_other_exceptions_through() -> None:
    @translates
    def call() -> None:
        raise BufferError

    with pytest.raises(BufferError):
        call()
