"""The ``confluent-json`` format: the Confluent header before a UTF-8 JSON object.

The document is parsed as the ``json`` format parses it (orjson, the same codes).
The writer's JSON Schema is fetched by id (cached, so an unknown id is an error
as for the other Confluent formats); the document is validated against it only
when the source says ``validate: true``, because validating (pure Python) costs some
50 times what parsing does (docs/performance.md, "Protobuf and JSON Schema"). Validation is the
``jsonschema`` library's, with the schema's references (other registry subjects,
by reference name) in a ``referencing`` registry; the draft is the schema's own
``$schema``, draft 7 when it names none (Confluent's default).

A failure is DecodeError ``schema_violation``, naming the failing keyword and where
in the *schema* it is (``properties/customer/properties/phone/type``): never the
value, which may be person data (jsonschema's own message quotes it).

``json_schema_shape`` gives a JSON Schema's shape as an Avro-like schema, so the
rules' field paths are checked by the same checker as Avro's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

from bridge.codecs.avro_schema import SchemaFileError
from bridge.codecs.confluent_header import HEADER_SIZE, confluent_schema_id
from bridge.codecs.json_codec import JsonDecoder
from bridge.codecs.registry import JsonSchemaDocument, SchemaRegistryClient
from bridge.errors import DecodeCode, DecodeError

# jsonschema and referencing are imported where a schema is first compiled, never
# at start-up: importing them costs about 8 MB and 0.1 s, and only a source with
# ``validate: true`` or a local JSON Schema file needs them.
if TYPE_CHECKING:
    from jsonschema.protocols import Validator

# How much of the failing schema location a message shows.
_MAX_LOCATION_PARTS: Final = 12


class ConfluentJsonDecoder:
    """Decodes Confluent-framed JSON values, validating them when asked; raises
    SchemaRegistryUnavailable when the schema cannot be fetched right now."""

    def __init__(self, registry: SchemaRegistryClient, *, validate: bool = False) -> None:
        self.registry = registry
        self.validate = validate
        self._json = JsonDecoder()
        self._validators: dict[int, Validator] = {}
        self._lock = threading.Lock()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """A fresh dict; DecodeError ``truncated``, ``bad_magic_byte``,
        ``unknown_schema_id``, the ``json`` format's codes and, when validating,
        ``schema_violation`` otherwise."""
        data, schema_id = confluent_schema_id(data)
        validator = self._validators.get(schema_id) or self._validator(schema_id)
        value = self._json.decode(data[HEADER_SIZE:])
        if self.validate:
            _check(validator, value)
        return value

    def _validator(self, schema_id: int) -> Validator:
        document = self.registry.json_schema(schema_id)  # may raise; nothing cached then
        with self._lock:
            found = self._validators.get(schema_id)
            if found is None:
                found = _make_validator(document, f"schema id {schema_id}")
                self._validators[schema_id] = found
            return found


def _make_validator(document: JsonSchemaDocument, where: str) -> Validator:
    from jsonschema import Draft7Validator, validators
    from jsonschema.exceptions import SchemaError
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    schema = document.schema
    resources = [
        (name, Resource.from_contents(contents, default_specification=DRAFT7))
        for name, contents in document.references.items()
    ]
    registry: Registry[Any] = Registry().with_resources(resources)
    validator_class = validators.validator_for(schema, default=Draft7Validator)
    try:
        validator_class.check_schema(schema)
    except SchemaError:
        raise DecodeError(
            DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where} is not a valid JSON Schema"
        ) from None
    return validator_class(schema, registry=registry)


def _check(validator: Validator, value: dict[str, Any]) -> None:
    from referencing.exceptions import Unresolvable

    try:
        error = next(iter(validator.iter_errors(value)), None)
    except Unresolvable:
        raise DecodeError(
            DecodeCode.INVALID_REGISTRY_SCHEMA, "the JSON Schema has a $ref that resolves nowhere"
        ) from None
    except RecursionError:
        raise DecodeError(
            DecodeCode.TOO_DEEP, "the value or its schema nests too deeply to validate"
        ) from None
    if error is not None:
        parts = [str(part) for part in error.absolute_schema_path]
        location = "/".join(parts[-_MAX_LOCATION_PARTS:]) or "(the root)"
        raise DecodeError(
            DecodeCode.SCHEMA_VIOLATION,
            f"the value does not match its JSON Schema: {error.validator!r} fails at {location}",
        )


# A local JSON Schema file (confluent-json's optional ``schema:``), for the checks.


def load_json_schema(path: Path) -> dict[str, Any]:
    """The JSON Schema object in the file at ``path``; SchemaFileError otherwise."""
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise SchemaFileError(f"JSON Schema file {path} does not exist") from None
    except OSError as exc:
        raise SchemaFileError(f"JSON Schema file {path} cannot be read: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise SchemaFileError(f"JSON Schema file {path} is not JSON ({exc.msg})") from None
    if not isinstance(document, dict):
        raise SchemaFileError(f"JSON Schema file {path} is not a JSON object")
    from jsonschema import Draft7Validator, validators
    from jsonschema.exceptions import SchemaError

    validator_class = validators.validator_for(document, default=Draft7Validator)
    try:
        validator_class.check_schema(document)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "the root"
        raise SchemaFileError(
            f"JSON Schema file {path} is not a valid schema (at {where})"
        ) from None
    return document


# The document's shape, for the load-time check of rule paths.

ANY_TYPE: Final = "any"  # a name the shape never defines: the checker stops there
_SCALARS: Final[dict[str, Any]] = {
    "string": "string",
    "integer": "long",
    "number": ["long", "double"],  # orjson reads 1 as an int, 1.5 as a float
    "boolean": "boolean",
    "null": "null",
}
_MAX_DEPTH: Final = 100
_NAMED: Final = "\x00"  # marks a name already claimed for a $ref's record


def json_schema_shape(schema: Mapping[str, Any], references: Mapping[str, Any]) -> Any:
    """``schema`` as an Avro-like schema: objects with ``properties`` are records,
    ``additionalProperties``/``patternProperties`` schemas make maps, arrays with one
    ``items`` schema are arrays, ``anyOf``/``oneOf`` and type lists are unions,
    ``allOf`` of objects merges their properties, ``$ref`` to the schema's own
    definitions or to a reference name is followed. Anything else is "any type".

    The choice that matters: an object's ``properties`` are taken as all the keys it
    has unless ``additionalProperties`` or ``patternProperties`` is a schema, so a
    misspelt path is caught although JSON Schema allows other keys by default.
    """
    return _Shapes(schema, references).shape(schema, "", 0)


class _Shapes:
    def __init__(self, root: Mapping[str, Any], references: Mapping[str, Any]) -> None:
        self._root = root
        self._references = references
        self._names: dict[str, str] = {}  # $ref -> the record name given to it
        self._taken: set[str] = set()  # every record name given: names must be unique

    def shape(self, node: Any, name: str, depth: int) -> Any:
        if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
            return ANY_TYPE
        if isinstance(node.get("$ref"), str):
            return self._ref(node["$ref"], depth)
        for union_key in ("anyOf", "oneOf"):
            if isinstance(node.get(union_key), list):
                return _union([self.shape(branch, name, depth + 1) for branch in node[union_key]])
        if isinstance(node.get("allOf"), list):
            return self._all_of(node["allOf"], name, depth)
        kind = node.get("type")
        if isinstance(kind, list):
            return _union([self._typed(node, k, name, depth) for k in kind if isinstance(k, str)])
        if kind is None and "properties" in node:
            kind = "object"
        return self._typed(node, kind, name, depth) if isinstance(kind, str) else ANY_TYPE

    def _typed(self, node: Mapping[str, Any], kind: str, name: str, depth: int) -> Any:
        if kind == "object":
            return self._object(node, name, depth)
        if kind == "array":
            items = node.get("items")
            item = ANY_TYPE
            if isinstance(items, dict):
                item = self.shape(items, f"{name}_item", depth + 1)
            return {"type": "array", "items": item}
        return _SCALARS.get(kind, ANY_TYPE)

    def _object(self, node: Mapping[str, Any], name: str, depth: int) -> Any:
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        open_values = [
            self.shape(value, f"{name}_value", depth + 1)
            for value in (node.get("patternProperties") or {}).values()
        ]
        if isinstance(extra, dict):
            open_values.append(self.shape(extra, f"{name}_value", depth + 1))
        if not isinstance(properties, dict):
            return {"type": "map", "values": _union(open_values) if open_values else ANY_TYPE}
        record = {
            "type": "record",
            "name": self._claim(name or "root"),
            "fields": [
                {"name": key, "type": self.shape(value, key, depth + 1)}
                for key, value in properties.items()
            ],
        }
        if open_values:
            return [record, {"type": "map", "values": _union(open_values)}]
        return record

    def _all_of(self, branches: list[Any], name: str, depth: int) -> Any:
        shapes = [self.shape(branch, name, depth + 1) for branch in branches]
        records = [s for s in shapes if isinstance(s, dict) and s.get("type") == "record"]
        if not records or len(records) != len(shapes):
            return ANY_TYPE
        fields = {f["name"]: f for record in records for f in record["fields"]}
        merged = list(fields.values())
        return {"type": "record", "name": self._claim(name or "root"), "fields": merged}

    def _ref(self, ref: str, depth: int) -> Any:
        if ref in self._names:
            return self._names[ref]  # recursive: a reference to the definition
        target = self._resolve(ref)
        if target is None:
            return ANY_TYPE
        name = self._claim(ref.rstrip("/").rsplit("/", 1)[-1].replace("#", "") or "ref")
        self._names[ref] = name
        shape = self.shape(target, _NAMED + name, depth + 1)
        if isinstance(shape, dict) and shape.get("type") == "record":
            return shape
        del self._names[ref]  # only records can be referred to by name
        return shape

    def _claim(self, wanted: str) -> str:
        """A record name not given before (the checker finds records by name; messages
        print it): the property's key, or a ref's last part (``Address`` for
        ``#/definitions/Address``). A ref's record keeps the name claimed for it."""
        if wanted.startswith(_NAMED):
            wanted = wanted.removeprefix(_NAMED)
            if wanted in self._names.values():
                return wanted
        base = wanted.replace(".", "_")
        name, number = base, 1
        while name in self._taken or name in _SCALARS.values() or name == ANY_TYPE:
            number += 1
            name = f"{base}_{number}"
        self._taken.add(name)
        return name

    def _resolve(self, ref: str) -> Any:
        document_name, _, fragment = ref.partition("#")
        document: Any = self._root if not document_name else self._references.get(document_name)
        for part in (p for p in fragment.split("/") if p):
            if not isinstance(document, Mapping):
                return None
            document = document.get(part.replace("~1", "/").replace("~0", "~"))
        return document


def _union(shapes: list[Any]) -> Any:
    if not shapes or ANY_TYPE in shapes:
        return ANY_TYPE
    flat: list[Any] = []
    for shape in shapes:
        for branch in shape if isinstance(shape, list) else [shape]:
            if branch not in flat:
                flat.append(branch)
    return flat[0] if len(flat) == 1 else flat
