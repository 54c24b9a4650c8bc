"""Check, when the configuration is loaded, that a rule only reads fields that exist.

For a source whose values are Avro records, a misspelt path (``customer.phon``)
would otherwise evaluate to null for every record, silently. This module
abstract-interprets a compiled JMESPath expression (``jmespath.compile(e).parsed``)
over Avro *types* instead of values: field lookups on records are checked, the
types flow through unions (a field exists if any record branch has it), arrays
(projections, indexes, slices, filters whose conditions are checked against the
element type, flatten), maps (any key exists), ``@``, pipes, ``||``/``&&`` and the
functions that pass their argument's type through (``not_null``, ``sort_by``,
``to_array`` ...). Where the type becomes unknown (a literal, a multi-select, most
function results) checking stops: this never reports a path that can exist.

A field looked up on something that is never an object (a string, an array) is
reported too: in JMESPath it is always null, which is never what a rule means
(``items.sku`` for ``items[*].sku``).

The root also holds the reserved ``_kafka`` key (the record's metadata, see the
mapping contract); it is checked against its fields as ``bridge.records`` defines
them, not against the schema.

It lives in ``mapping`` rather than ``codecs`` because it interprets JMESPath, the
rules' language; it reads the schema only through ``codecs.avro_schema``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, get_args, get_origin, get_type_hints

from bridge.codecs.avro_schema import (
    PRIMITIVE_TYPES,
    AvroSchema,
    named_types,
    resolve,
    type_name,
)
from bridge.records import KAFKA_KEY, KafkaDocument


def _avro_type_of(hint: Any) -> Any:
    """The Avro type standing for a Python type of :class:`KafkaDocument` (names only matter)."""
    origin, arguments = get_origin(hint), get_args(hint)
    if origin is dict:
        return {"type": "map", "values": _avro_type_of(arguments[1])}
    if arguments:  # X | None
        return ["null", *(_avro_type_of(a) for a in arguments if a is not type(None))]
    return {str: "string", int: "long"}[hint]


# The record document's reserved key as an Avro record, derived from its one definition.
KAFKA_METADATA: Final[dict[str, Any]] = {
    "type": "record",
    "name": KAFKA_KEY,
    "fields": [
        {"name": name, "type": _avro_type_of(hint)}
        for name, hint in get_type_hints(KafkaDocument).items()
    ],
}


_SIMPLE_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class _Unknown:
    """The abstract value for "any type": nothing below it is checked."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


class _Root:
    """The record document: the schema's type plus the reserved ``_kafka`` key."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema


# Built-in functions whose result type follows from their arguments' (the others
# give an unknown type): the same array, one of its elements, and the position of
# the array argument whose elements an ``&expref`` argument is evaluated against.
_ARRAY_PASS_THROUGH: Final = {"sort", "reverse", "sort_by"}
_ELEMENT_OF_ARRAY: Final = {"min_by", "max_by"}
_EXPREF_ON_ELEMENTS: Final = {"sort_by": 0, "min_by": 0, "max_by": 0, "map": 1}


def unknown_field_paths(
    schema: AvroSchema, ast: Mapping[str, Any], label: str = "Avro schema"
) -> list[str]:
    """Problems with the field paths ``ast`` reads from records of ``schema`` (parsed).

    Each problem is one line, such as ``field 'customer.phon' is not in the Avro
    schema (record 'Customer' has: first_name, id, phone, sms_opt_in)``; each is
    reported once, in the order found. Field names from the schema are printed
    (they are not person data), values never. ``label`` names the schema in them:
    Protobuf messages and JSON Schemas are checked as their Avro-like shapes
    (``bridge.codecs.protobuf_shape``, ``bridge.codecs.json_schema_shape``).
    """
    checker = _Checker(named_types(schema, {KAFKA_KEY: KAFKA_METADATA}), label)
    checker.eval(ast, _Root(schema), "")
    return list(dict.fromkeys(checker.problems))


# The schema types each ``as:`` conversion refuses for every value (bridge.mapping.
# conversions): a path of only such types fails every record, so it is refused at
# load time. Strings, bytes (base64 text), ints and longs may convert; an Avro
# logical type is judged by its underlying type, so this never refuses one that
# decodes to a convertible string.
_NEVER_CONVERTED: Final[Mapping[str, frozenset[str]]] = {
    "integer": frozenset({"record", "error", "map", "array", "boolean", "enum"}),
    "number": frozenset({"record", "error", "map", "array", "boolean", "enum"}),
    "boolean": frozenset({"record", "error", "map", "array", "float", "double"}),
    "e164": frozenset({"record", "error", "map", "array", "boolean", "float", "double"}),
}


def conversion_problem(
    schema: AvroSchema, ast: Mapping[str, Any], conversion: str, label: str = "Avro schema"
) -> str | None:
    """Why ``as: conversion`` can never take what ``ast`` reads, or None if it may."""
    never = _NEVER_CONVERTED.get(conversion)
    if never is None:
        return None
    checker = _Checker(named_types(schema, {KAFKA_KEY: KAFKA_METADATA}), label)
    value, path = checker.eval_path(ast, _Root(schema), "")
    if value is UNKNOWN:
        return None
    kinds = []
    for branch in checker.branches(value):
        if branch is UNKNOWN:
            return None
        kinds.append(type_name(branch))
    if not kinds or any(kind not in never for kind in kinds):
        return None
    described = " or ".join(_article(kind) for kind in dict.fromkeys(kinds))
    return f"'{path or '@'}' is {described} in the {label}: as: {conversion} never takes one"


class _Checker:
    def __init__(self, named: Mapping[str, Any], label: str = "Avro schema") -> None:
        self.named = named
        self.label = label
        self.problems: list[str] = []
        self._handlers: dict[str, Callable[[Mapping[str, Any], Any, str], tuple[Any, str]]] = {
            "field": self._field,
            "subexpression": self._subexpression,
            "index_expression": self._index_expression,
            "projection": self._projection,
            "filter_projection": self._filter_projection,
            "value_projection": self._value_projection,
            "flatten": self._flatten,
            "pipe": self._pipe,
            "function_expression": self._function,
            "or_expression": self._either,
            "and_expression": self._either,
        }

    # The evaluator: (node, type of the current value, its path text) -> (type, path).

    def eval(self, node: Mapping[str, Any], current: Any, path: str) -> Any:
        return self.eval_path(node, current, path)[0]

    def eval_path(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        kind = node.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            try:
                return handler(node, current, path)
            except (KeyError, ValueError, TypeError, AttributeError):
                pass  # a node shaped unlike jmespath 1.x's: check its parts, then stop
        if kind in ("current", "identity"):
            return current, path
        # Anything else yields a value of unknown type (a literal, a comparison, a
        # negation, a multi-select, an expref): check what it reads, then stop.
        self._check_children(node, current, path)
        return UNKNOWN, ""

    def _check_children(self, node: Mapping[str, Any], current: Any, path: str) -> None:
        for child in node.get("children", ()):
            if isinstance(child, Mapping):
                if child.get("type") == "expref":
                    continue  # relative to elements of an unknown array: not checkable
                self.eval(child, current, path)

    def _field(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        name = node["value"]
        full = f"{path}.{name}" if path and not path.endswith(" ") else f"{path}{name}"
        return self._lookup(current, name, full, path), full

    def _subexpression(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        for child in node["children"]:  # jmespath folds a.b.c into one node
            current, path = self.eval_path(child, current, path)
        return current, path

    def _index_expression(
        self, node: Mapping[str, Any], current: Any, path: str
    ) -> tuple[Any, str]:
        left, *indexes = node["children"]  # jmespath folds a[0][1] into one node
        value, path = self.eval_path(left, current, path)
        for index in indexes:
            if index.get("type") == "slice":
                path += _slice_text(index.get("children", ()))
            elif index.get("type") == "index":
                value, path = self._element(value), f"{path}[{index.get('value')}]"
            else:
                value, path = self.eval_path(index, value, path)
        return value, path

    def _projection(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        left, right = node["children"]
        array, path = self.eval_path(left, current, path)
        path = _element_path(left, path)
        result, _ = self.eval_path(right, self._element(array), path)
        return _array_of(result), path

    def _filter_projection(
        self, node: Mapping[str, Any], current: Any, path: str
    ) -> tuple[Any, str]:
        left, right, condition = node["children"]
        array, path = self.eval_path(left, current, path)
        element = self._element(array)
        path = _element_path(left, path)
        self.eval(condition, element, path)
        result, _ = self.eval_path(right, element, path)
        return _array_of(result), path

    def _value_projection(
        self, node: Mapping[str, Any], current: Any, path: str
    ) -> tuple[Any, str]:
        left, right = node["children"]
        mapping, path = self.eval_path(left, current, path)
        values = self._values(mapping)
        result, _ = self.eval_path(right, values, f"{path}.*")
        return _array_of(result), f"{path}.*"

    def _flatten(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        array, path = self.eval_path(node["children"][0], current, path)
        element = self._element(array)
        if element is UNKNOWN:
            return UNKNOWN, f"{path}[]"
        flat = [self._element(b) if type_name(b) == "array" else b for b in self._branches(element)]
        return _array_of(_union(flat)), f"{path}[]"

    def _pipe(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        left, right = node["children"]
        value, left_path = self.eval_path(left, current, path)
        return self.eval_path(right, value, f"{left_path} | " if left_path else "")

    def _either(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        left, right = (self.eval(child, current, path) for child in node["children"])
        return _union([left, right]), ""

    def _function(self, node: Mapping[str, Any], current: Any, path: str) -> tuple[Any, str]:
        name = node.get("value")
        args: Sequence[Mapping[str, Any]] = node.get("children", ())
        types = [
            UNKNOWN if arg.get("type") == "expref" else self.eval(arg, current, path)
            for arg in args
        ]
        position = _EXPREF_ON_ELEMENTS.get(name) if isinstance(name, str) else None
        expref_result: Any = UNKNOWN
        if position is not None and len(args) == 2:
            array_arg = types[position]
            expref = args[1 - position]
            if expref.get("type") == "expref":
                expref_result = self.eval(
                    expref["children"][0], self._element(array_arg), f"{_text(args[position])}[*]"
                )
        text = f"{name}(...)"
        if name == "not_null" and types:
            return _union(types), text
        if name in _ARRAY_PASS_THROUGH and types:
            return types[0], text
        if name in _ELEMENT_OF_ARRAY and types:
            return self._element(types[0]), text
        if name == "map":
            return _array_of(expref_result), text
        if name == "to_array" and len(types) == 1:
            arg = types[0]
            is_array = all(type_name(b) == "array" for b in self._branches(arg))
            return (arg if is_array else _array_of(arg)), text
        return UNKNOWN, ""

    # Type operations.

    def _resolve(self, node: Any) -> Any:
        if node is UNKNOWN or isinstance(node, _Root):
            return node
        resolved = resolve(node, self.named)
        if isinstance(resolved, str) and resolved not in PRIMITIVE_TYPES:
            return UNKNOWN  # a name this schema does not define: do not guess
        return resolved

    def branches(self, node: Any) -> list[Any]:
        """The non-null alternatives of a type, resolved (UNKNOWN among them if unknown)."""
        return self._branches(node)

    def _branches(self, node: Any) -> list[Any]:
        """The non-null alternatives of a (possibly union) type, resolved."""
        node = self._resolve(node)
        if isinstance(node, _Root):
            return self._branches(node.schema)
        if isinstance(node, list):
            return [b for branch in node for b in self._branches(branch) if b != "null"]
        return [node]

    def _element(self, array: Any) -> Any:
        """The item type of an array type (of every array branch of a union)."""
        items = []
        for branch in self._branches(array):
            if branch is UNKNOWN:
                return UNKNOWN
            if type_name(branch) == "array":
                items.append(branch.get("items"))
        return _union(items) if items else UNKNOWN

    def _values(self, mapping: Any) -> Any:
        """The type of the values ``*`` projects: map values, or any field's type."""
        values: list[Any] = []
        for branch in self._branches(mapping):
            kind = type_name(branch) if branch is not UNKNOWN else "?"
            if kind == "map":
                values.append(branch.get("values"))
            elif kind in ("record", "error"):
                values.extend(f.get("type") for f in branch.get("fields", ()))
            else:
                return UNKNOWN
        if isinstance(self._resolve(mapping), _Root):
            values.append(KAFKA_METADATA)
        return _union(values) if values else UNKNOWN

    def _lookup(self, current: Any, name: str, full: str, parent: str) -> Any:
        """The type of ``current.name``; records a problem when it never exists."""
        resolved = self._resolve(current)
        if isinstance(resolved, _Root):
            if name == KAFKA_KEY:
                return KAFKA_METADATA
            current = resolved.schema
        found: list[Any] = []
        records: list[dict[str, Any]] = []
        others: list[str] = []
        for branch in self._branches(current):
            kind = "?" if branch is UNKNOWN else type_name(branch)
            if kind == "?":
                return UNKNOWN
            if kind == "map":
                found.append(branch.get("values"))
            elif kind in ("record", "error"):
                field = next((f for f in branch.get("fields", ()) if f.get("name") == name), None)
                if field is not None:
                    found.append(field.get("type"))
                records.append(branch)
            else:
                others.append(kind)
        if found:
            return _union(found)
        if records or others:
            self.problems.append(_problem(full, parent, records, others, self.label))
        return UNKNOWN


def _union(types: list[Any]) -> Any:
    """One type for several alternatives; unknown if any is."""
    if any(t is UNKNOWN for t in types):
        return UNKNOWN
    if len(types) == 1:
        return types[0]
    return list(types) if types else UNKNOWN


def _array_of(items: Any) -> Any:
    return {"type": "array", "items": items}


def _element_path(left: Mapping[str, Any], path: str) -> str:
    """The path text of a projection's elements: ``items[*]``, but ``items[]`` and
    ``items[0:2]`` already say it."""
    kind = left.get("type")
    slices = kind == "index_expression" and left["children"][-1].get("type") == "slice"
    return path if kind == "flatten" or slices else f"{path}[*]"


def _slice_text(parts: Sequence[Any]) -> str:
    return "[" + ":".join("" if part is None else str(part) for part in parts).rstrip(":") + "]"


def _text(node: Mapping[str, Any]) -> str:
    """A short path text for an argument: the field chain, else ``...``."""
    if node.get("type") == "field":
        return str(node.get("value"))
    if node.get("type") == "subexpression":
        parts = [_text(child) for child in node.get("children", ())]
        return ".".join(parts)
    return "..."


def _problem(
    full: str, parent: str, records: list[dict[str, Any]], others: list[str], label: str
) -> str:
    if records and records[0].get("name") == KAFKA_KEY:
        names = ", ".join(sorted(f["name"] for f in KAFKA_METADATA["fields"]))
        return f"field '{full}' is not in the record metadata ({KAFKA_KEY} has: {names})"
    described = [
        f"record '{_short(r.get('name', '?'))}' has: "
        + ", ".join(sorted(f.get("name", "?") for f in r.get("fields", ())))
        for r in records
    ]
    described += [f"{parent or 'the value'} is {_article(kind)}" for kind in dict.fromkeys(others)]
    hint = ""
    if "array" in others and _SIMPLE_PATH.fullmatch(parent):
        hint = f"; use {parent}[*].{full.rsplit('.', 1)[-1]} for each element"
    return f"field '{full}' is not in the {label} ({'; '.join(described)}){hint}"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _article(kind: str) -> str:
    word = {
        "record": "a record",
        "array": "an array",
        "enum": "an enum",
        "int": "an int",
        "error": "an error record",
    }
    return word.get(kind, f"a {kind}")
