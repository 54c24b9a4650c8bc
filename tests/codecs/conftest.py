"""Fixtures for the codec tests: the project's schemas, their examples, a registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.codecs import AvroSchema, load_avro_schema
from tests.support.schema_registry import TestSchemaRegistry, running_schema_registry

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture(scope="session")
def shipment_schema() -> AvroSchema:
    return load_avro_schema(SCHEMAS / "shipment_event.avsc")


@pytest.fixture(scope="session")
def order_schema() -> AvroSchema:
    return load_avro_schema(SCHEMAS / "order_event.avsc")


@pytest.fixture
def shipment_example() -> dict[str, Any]:
    """The JSON-friendly shipment record (what the avro decoder gives), fresh per test."""
    value: dict[str, Any] = json.loads((SCHEMAS / "examples" / "shipment_event.json").read_text())
    return value


@pytest.fixture
def order_example() -> dict[str, Any]:
    value: dict[str, Any] = json.loads((SCHEMAS / "examples" / "order_event.json").read_text())
    return value


@pytest.fixture
def schema_registry() -> Iterator[TestSchemaRegistry]:
    """A fresh Confluent-compatible test registry on 127.0.0.1 (real HTTP)."""
    with running_schema_registry() as registry:
        yield registry
