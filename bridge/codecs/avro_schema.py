"""Loading, checking and walking Avro schemas (the ``.avsc`` files and registry texts).

fastavro's ``parse_schema`` is the parser (it also compiles the schema for fast
reading), but it is lenient: it accepts a record without ``fields``, duplicate field
names, a ``decimal`` without ``precision`` (which then fails on the first record
read, not when the file is loaded) and invalid names. The configuration loader has
to refuse those at start-up with one clear line, so :func:`schema_problems` checks
the few rules fastavro leaves out before it is called.

A *parsed* schema (:data:`AvroSchema`) is what fastavro returns: named types carry
their full name (``com.example.shop.Customer``), the first use of a named type holds
its definition and later uses are the name as a plain string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import fastavro

from bridge.errors import BridgeError

AvroSchema = Any
"""A schema as returned by :func:`fastavro.parse_schema` (a dict, list or string)."""

PRIMITIVE_TYPES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
NAMED_TYPES: Final = frozenset({"record", "error", "enum", "fixed"})
_KNOWN_TYPES: Final = PRIMITIVE_TYPES | NAMED_TYPES | {"array", "map"}
_DEFINING_KEYS: Final = ("fields", "symbols", "items", "values", "size")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MESSAGE_LIMIT: Final = 200


class SchemaFileError(BridgeError):
    """A schema file (or a schema text) that cannot be used; the message is one line."""


def load_avro_schema(path: Path, *, require_record: bool = True) -> AvroSchema:
    """Read, check and parse the ``.avsc`` file at ``path``, once.

    With ``require_record`` (the default) the top-level type must be a record, or a
    union of records, because a source's values become JSON objects.
    Raises :class:`SchemaFileError` with a one-line message naming the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaFileError(f"schema file {path} does not exist") from None
    except UnicodeDecodeError:
        raise SchemaFileError(f"schema file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise SchemaFileError(f"schema file {path} cannot be read: {exc.strerror}") from None
    try:
        return parse_avro_schema_text(text, require_record=require_record)
    except SchemaFileError as exc:
        raise SchemaFileError(f"schema file {path}: {exc}") from None


def parse_avro_schema_text(
    text: str,
    *,
    require_record: bool = True,
    named_schemas: dict[str, Any] | None = None,
) -> AvroSchema:
    """Parse a schema given as JSON text (a file's or the Schema Registry's).

    ``named_schemas`` is fastavro's table of named types, shared between a schema
    and the schemas it references (Confluent schema references); it is filled in.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaFileError(
            f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:  # the standard library's parser recurses per level
        raise SchemaFileError(_TOO_DEEP) from None
    return parse_avro_schema(document, require_record=require_record, named_schemas=named_schemas)


MAX_SCHEMA_DEPTH: Final = 100
"""How deeply a schema's JSON may nest (about 30 records inside one another).

Every walk over a schema (the checks here, fastavro's parser, the decoding plan,
the rules' path check) recurses per level: a bound here keeps them all far from
Python's recursion limit, so a hostile file is a clear error, not a traceback."""

_TOO_DEEP: Final = f"not supported: the schema nests more than {MAX_SCHEMA_DEPTH} levels deep"


def _json_depth(document: Any) -> int:
    """The nesting depth of decoded JSON, without recursion (stops past the limit)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            pending.extend((child, depth + 1) for child in children)
    return deepest


def parse_avro_schema(
    document: Any,
    *,
    require_record: bool = True,
    named_schemas: dict[str, Any] | None = None,
) -> AvroSchema:
    """Check and parse a schema given as decoded JSON; see :func:`parse_avro_schema_text`."""
    if _json_depth(document) > MAX_SCHEMA_DEPTH:
        raise SchemaFileError(_TOO_DEEP)
    problems = schema_problems(document)
    if problems:
        raise SchemaFileError("not a valid Avro schema: " + problems[0])
    try:
        if named_schemas is None:
            parsed = fastavro.parse_schema(document)
        else:
            parsed = fastavro.parse_schema(document, named_schemas=named_schemas)
    except KeyError as exc:  # fastavro reports a missing attribute as a bare KeyError
        raise SchemaFileError(f"not a valid Avro schema: missing {exc}") from None
    except Exception as exc:  # fastavro raises an open set of types for bad schemas
        raise SchemaFileError(f"not a valid Avro schema: {_one_line(str(exc))}") from None
    table = named_types(parsed, named_schemas)
    if _has_zero_width_items(parsed, table, set()):
        # fastavro would loop through the count a few bytes claim: 2**63 items.
        raise SchemaFileError(
            "not supported: an array whose items take no bytes (null, an empty record, "
            "fixed of size 0) lets a few bytes of a record claim billions of items"
        )
    if require_record and not _is_record_or_union_of_records(parsed, table):
        raise SchemaFileError(
            "the top-level type must be a record (or a union of records): "
            "a source's values are JSON objects"
        )
    return parsed


def schema_problems(document: Any) -> list[str]:
    """What fastavro's parser would let through: missing fields, duplicates, bad names,
    incomplete decimals, duplicate union branches. Empty when none was found.

    Hand-written because fastavro does not check these (see the module docstring).
    """
    problems: list[str] = []
    _check(document, problems)
    return problems


def _check(node: Any, problems: list[str]) -> None:
    if isinstance(node, list):
        _check_union(node, problems)
        for branch in node:
            _check(branch, problems)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if isinstance(kind, (dict, list)):
        _check(kind, problems)
        return
    if (
        isinstance(kind, str)
        and kind not in _KNOWN_TYPES
        and any(key in node for key in _DEFINING_KEYS)
    ):  # {"type": "recrd", "fields": ...} defines something, it is no named reference
        problems.append(f"unknown type {kind!r}")
        return
    if kind in NAMED_TYPES:
        name = node.get("name")
        if isinstance(name, str) and not all(_NAME.fullmatch(p) for p in name.split(".")):
            problems.append(f"invalid type name {name!r}")
    if kind in ("record", "error"):
        _check_record(node, problems)
    elif kind == "array":
        _check(node.get("items"), problems)
    elif kind == "map":
        _check(node.get("values"), problems)
    if node.get("logicalType") == "decimal":
        _check_decimal(node, problems)


def _check_record(node: dict[str, Any], problems: list[str]) -> None:
    record = node.get("name", "?")
    fields = node.get("fields")
    if not isinstance(fields, list):
        problems.append(f"record {record!r} has no 'fields' list")
        return
    seen: set[str] = set()
    for field in fields:
        if not isinstance(field, dict):
            problems.append(f"record {record!r} has a field that is not an object")
            continue
        name = field.get("name")
        if isinstance(name, str):
            if not _NAME.fullmatch(name):
                problems.append(f"record {record!r} has an invalid field name {name!r}")
            if name in seen:
                problems.append(f"record {record!r} has the field {name!r} twice")
            seen.add(name)
        _check(field.get("type"), problems)


def _check_decimal(node: dict[str, Any], problems: list[str]) -> None:
    precision = node.get("precision")
    scale = node.get("scale", 0)
    if type(precision) is not int or precision < 1:
        problems.append("a decimal needs an integer 'precision' of at least 1")
    elif type(scale) is not int or not 0 <= scale <= precision:
        problems.append("a decimal's 'scale' must be an integer from 0 to its precision")


def _check_union(branches: list[Any], problems: list[str]) -> None:
    seen: set[str] = set()
    for branch in branches:
        if isinstance(branch, list):
            problems.append("a union may not contain a union")
            continue
        kind = branch.get("type") if isinstance(branch, dict) else branch
        if isinstance(branch, dict) and kind in NAMED_TYPES:
            continue  # several named types of one kind are allowed
        if isinstance(kind, str) and (kind in PRIMITIVE_TYPES or kind in ("array", "map")):
            if kind in seen:
                problems.append(f"a union holds the type {kind!r} twice")
            seen.add(kind)


def _has_zero_width_items(node: Any, named: Mapping[str, Any], seen: set[str]) -> bool:
    """Whether an array in ``node`` has items that can be encoded in zero bytes."""
    node = resolve(node, named)
    kind = type_name(node)
    if kind == "union":
        return any(_has_zero_width_items(branch, named, seen) for branch in node)
    if kind == "array":
        items = node.get("items")
        return _zero_width(items, named, set()) or _has_zero_width_items(items, named, seen)
    if kind == "map":
        return _has_zero_width_items(node.get("values"), named, seen)
    if kind in ("record", "error"):
        name = node.get("name")
        if name in seen:
            return False
        seen.add(name)
        return any(_has_zero_width_items(f.get("type"), named, seen) for f in node["fields"])
    return False


def _zero_width(node: Any, named: Mapping[str, Any], seen: set[str]) -> bool:
    node = resolve(node, named)
    kind = type_name(node)
    if kind == "null":
        return True
    if kind == "fixed":
        return bool(node.get("size") == 0)
    if kind in ("record", "error") and node.get("name") not in seen:
        seen.add(node.get("name"))
        return all(_zero_width(f.get("type"), named, seen) for f in node.get("fields", ()))
    return False


def _is_record_or_union_of_records(parsed: AvroSchema, named: Mapping[str, Any]) -> bool:
    if isinstance(parsed, list):
        branches = [b for b in parsed if b != "null"]
        return bool(branches) and all(_is_record_or_union_of_records(b, named) for b in branches)
    if isinstance(parsed, str):
        parsed = named.get(parsed)
    return isinstance(parsed, dict) and parsed.get("type") in ("record", "error")


def named_types(schema: AvroSchema, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every named type a parsed schema defines, by full name (plus ``extra``'s).

    fastavro keeps its own table under ``__named_schemas`` on a parsed record; this
    also covers top-level unions and schemas parsed with a shared table.
    """
    table: dict[str, Any] = dict(extra or {})
    if isinstance(schema, dict):
        table.update(schema.get("__named_schemas", {}))
    for node in definitions(schema):
        table.setdefault(node["name"], node)
    return table


def written_types(node: Any) -> Iterator[Any]:
    """Every type written inside ``node``, depth first (references are not followed):
    unions as lists, complex types as dicts, names and primitives as strings."""
    yield node
    if isinstance(node, list):
        for branch in node:
            yield from written_types(branch)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if isinstance(kind, (dict, list)):
        yield from written_types(kind)
    elif kind in ("record", "error"):
        for field in node.get("fields", ()):
            yield from written_types(field.get("type"))
    elif kind == "array":
        yield from written_types(node.get("items"))
    elif kind == "map":
        yield from written_types(node.get("values"))


def definitions(node: Any) -> Iterator[dict[str, Any]]:
    """Every named-type definition written inside ``node`` (not followed references)."""
    for written in written_types(node):
        if (
            isinstance(written, dict)
            and isinstance(written.get("type"), str)
            and written["type"] in NAMED_TYPES
            and isinstance(written.get("name"), str)
        ):
            yield written


def resolve(node: Any, named: Mapping[str, Any]) -> Any:
    """``node`` with a named-type reference (a full name) replaced by its definition,
    and the ``{"type": {...}}`` wrapping removed. Primitives stay strings."""
    while True:
        if isinstance(node, str):
            if node in PRIMITIVE_TYPES or node not in named:
                return node
            node = named[node]
        elif isinstance(node, dict) and isinstance(node.get("type"), (dict, list)):
            node = node["type"]
        elif isinstance(node, dict) and node.get("type") in named and len(node) == 1:
            node = named[node["type"]]
        else:
            return node


def type_name(node: Any) -> str:
    """The kind of a resolved node: a primitive name, ``record``, ``union`` ..."""
    if isinstance(node, list):
        return "union"
    if isinstance(node, str):
        return node
    kind = node.get("type")
    return kind if isinstance(kind, str) else "?"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MESSAGE_LIMIT else line[: _MESSAGE_LIMIT - 3] + "..."
