"""Reading back the versioned JSON records the bridge writes itself (receipts, parked events).

Both formats are a JSON object with a ``version`` and a ``source`` object naming
the record they came from, and both must refuse anything the bridge did not
write without quoting it (a corrupt record could hold anything, person data
included). One reader serves both; each format passes its own exception class,
so a caller still sees :class:`~bridge.receipts.NotAReceipt` or
:class:`~bridge.parking.NotParked`.
"""

from __future__ import annotations

from typing import Any

import orjson

from bridge.errors import BridgeError
from bridge.records import is_topic_name

Document = dict[str, Any]


def read_versioned(
    value: bytes | None, *, version: int, what: str, error: type[BridgeError]
) -> tuple[Document, Document, str]:
    """The document, its ``source`` object and the source topic; raises ``error`` otherwise."""
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        raise error("the value is not JSON") from None
    if not isinstance(document, dict):
        raise error("the value is not a JSON object")
    if document.get("version") != version:
        raise error(f"the value is not a version {version} {what}")
    source = document.get("source")
    if not isinstance(source, dict):
        raise error("source is missing")
    topic = text_field(source, "topic", 249, error)
    if not is_topic_name(topic):
        raise error("source.topic is not a Kafka topic name")
    return document, source, topic


def text_field(document: Document, name: str, limit: int, error: type[BridgeError]) -> str:
    """``document[name]`` as text of at most ``limit`` characters."""
    value = document.get(name)
    if not isinstance(value, str) or len(value) > limit:
        raise error(f"{name} is not text of at most {limit} characters")
    return value


def number_field(document: Document, name: str, largest: int, error: type[BridgeError]) -> int:
    """``document[name]`` as an integer from 0 to ``largest`` (a boolean is not one)."""
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= largest:
        raise error(f"{name} is not an integer from 0 to {largest}")
    return value
