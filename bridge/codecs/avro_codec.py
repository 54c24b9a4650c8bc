"""The ``avro`` format: schemaless Avro bodies, read against one ``.avsc`` file.

The schema is parsed and compiled once (:func:`fastavro.parse_schema`), and so are
the schema fastavro reads with and the plan that makes logical types and bytes
JSON-friendly (:mod:`bridge.codecs.avro_plan`). :func:`read_avro` is shared with the
``confluent-avro`` format, which reads the same bodies after a 5-byte header.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from fastavro import schemaless_reader
from fastavro.read import SchemaResolutionError

from bridge.codecs.avro_logical import Converter
from bridge.codecs.avro_plan import compile_plan, reading_schema
from bridge.codecs.avro_schema import AvroSchema
from bridge.codecs.base import not_an_object, require_bytes
from bridge.errors import DecodeCode, DecodeError


class AvroDecoder:
    """Decodes schemaless Avro values of one schema (a record, or a union of records)."""

    def __init__(self, schema: AvroSchema) -> None:
        """``schema`` is parsed (see :func:`bridge.codecs.load_avro_schema`)."""
        self.schema = schema
        self._reading = reading_schema(schema)
        self._plan = compile_plan(schema)

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """A fresh dict; DecodeError ``truncated``, ``trailing_bytes`` ... otherwise."""
        return read_avro(require_bytes(data), 0, self._reading, None, self._plan)


def read_avro(
    data: bytes,
    start: int,
    writer: AvroSchema,
    reader: AvroSchema | None,
    plan: Converter | None,
) -> dict[str, Any]:
    """Read the one Avro value that fills ``data[start:]`` and make it JSON-friendly.

    ``writer`` is a :func:`~bridge.codecs.avro_plan.reading_schema`; ``plan`` is
    compiled from the schema that gives the value its shape (the reader's, if any).

    Every failure becomes a DecodeError whose message names the cause, never the data.
    """
    stream = BytesIO(data)  # shares the bytes' buffer: no copy
    stream.seek(start)
    try:
        value = schemaless_reader(stream, writer, reader)
        if type(value) is not dict:
            raise not_an_object("null" if value is None else type(value).__name__)
        if plan is not None:
            value = plan(value)
    except DecodeError:
        raise
    except EOFError:
        raise DecodeError(
            DecodeCode.TRUNCATED, "the Avro value ends before the schema says"
        ) from None
    except UnicodeDecodeError:
        raise DecodeError(DecodeCode.INVALID_UTF8, "an Avro string is not valid UTF-8") from None
    except RecursionError:
        raise DecodeError(DecodeCode.TOO_DEEP, "the Avro value nests too deeply to read") from None
    except OverflowError:
        raise DecodeError(
            DecodeCode.VALUE_OUT_OF_RANGE, "a date, time or timestamp is outside years 1 to 9999"
        ) from None
    except SchemaResolutionError:
        raise DecodeError(
            DecodeCode.SCHEMA_MISMATCH, "the writer's schema cannot be read with the reader schema"
        ) from None
    except (ValueError, IndexError, KeyError, TypeError, MemoryError) as exc:
        # fastavro's answer to bytes that do not fit the schema: a union or enum
        # index out of range, a negative length, an invalid uuid, a bad time ...
        raise DecodeError(
            DecodeCode.INVALID_AVRO,
            f"the bytes are not a value of the schema ({type(exc).__name__})",
        ) from None
    except Exception as exc:
        # The boundary: no library exception may escape a decoder (see base.py);
        # anything not foreseen above is still this record's bytes failing.
        raise DecodeError(
            DecodeCode.UNDECODABLE, f"the Avro value cannot be read ({type(exc).__name__})"
        ) from None
    remaining = len(data) - stream.tell()
    if remaining:
        raise DecodeError(
            DecodeCode.TRAILING_BYTES,
            f"{remaining} bytes are left over after a complete Avro value",
        )
    return value
