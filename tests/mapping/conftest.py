"""Fixtures for the mapping tests: the project's Avro schemas, for the load-time path check."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.codecs import AvroSchema, load_avro_schema

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture(scope="session")
def shipment_schema() -> AvroSchema:
    return load_avro_schema(SCHEMAS / "shipment_event.avsc")
