"""What the hot path does to a decoded Avro value, worked out once per schema.

Two things are compiled from a schema, never per record:

- :func:`reading_schema`: the schema fastavro reads with, a copy without the
  ``logicalType`` annotations, so fastavro hands over raw ints, bytes and strings
  instead of building ``datetime``, ``Decimal`` and ``UUID`` objects that would only
  be turned into strings (that costs more than the rest of the decode). Only the
  branches of a union that could not be told apart by the raw Python type (say
  ``["int", {"type": "long", "logicalType": "timestamp-millis"}]``) keep theirs,
  so that the object's type tells them apart.
- :func:`compile_plan`: a converter that visits only the fields, array items, map
  values and union branches that can hold a value to convert (see
  :mod:`bridge.codecs.avro_logical` for the formats), or ``None`` when the schema has
  none, so that nothing at all runs per record. Records and maps are converted in
  place, arrays rebuilt.

Unions are dispatched on the value's Python type. A dict in a union of several
records (and maybe a map) goes to the record whose field names are exactly its
keys, else to the map; record branches with the same field names cannot be told
apart by the value, and the first one wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import fastavro

from bridge.codecs.avro_logical import Converter, Leaf, leaf_for
from bridge.codecs.avro_schema import (
    NAMED_TYPES,
    AvroSchema,
    definitions,
    named_types,
    resolve,
    type_name,
    written_types,
)


def compile_plan(schema: AvroSchema, named: Mapping[str, Any] | None = None) -> Converter | None:
    """The converter for values read with ``schema`` (parsed), or ``None`` if none is
    needed. ``named`` adds named types defined elsewhere (schema references)."""
    return _Compiler(named_types(schema, named)).compile(schema)


def reading_schema(schema: AvroSchema) -> AvroSchema:
    """A parsed copy of ``schema`` for fastavro to read with (see the module doc).

    The result reads the same bytes into the same shape, with raw values where
    ``schema`` has logical types; :func:`compile_plan` of ``schema`` converts them.
    """
    table = named_types(schema)
    inline = {node["name"] for node in definitions(schema)}
    keep = _kept_named(schema, table)
    external: dict[str, Any] = {}
    for name, node in table.items():
        if name not in inline:  # defined by a referenced schema (Confluent references)
            external[name] = _strip(node, table, keep, keep_here=False)
    stripped = _strip(schema, table, keep, keep_here=False)
    return fastavro.parse_schema(stripped, named_schemas=external)


# ------------------------------------------------------------------- union analysis


def _ambiguous_raw_types(leaves: list[Leaf]) -> set[type]:
    """Raw Python types that two branches give but convert differently."""
    claims: dict[type, set[Converter | None]] = {}
    for leaf in leaves:
        claims.setdefault(leaf.raw, set()).add(leaf.convert)
    return {raw for raw, converters in claims.items() if len(converters) > 1}


def _unions(node: Any) -> Iterator[list[Any]]:
    """Every union written inside ``node`` (not followed references)."""
    for written in written_types(node):
        if isinstance(written, list):
            yield written


def _kept_branches(branches: list[Any], named: Mapping[str, Any]) -> list[bool]:
    """For each branch of a union, whether it keeps its logicalType: only those whose
    raw Python type another branch shares with a different conversion."""
    leaves = [_leaf_of(branch, named) for branch in branches]
    ambiguous = _ambiguous_raw_types([leaf for leaf in leaves if leaf is not None])
    return [leaf is not None and leaf.raw in ambiguous for leaf in leaves]


def _leaf_of(branch: Any, named: Mapping[str, Any]) -> Leaf | None:
    node = resolve(branch, named)
    return leaf_for(node) if isinstance(node, (str, dict)) else None


def _kept_named(schema: AvroSchema, table: Mapping[str, Any]) -> set[str]:
    """Named fixed types that keep their logicalType (see :func:`_kept_branches`)."""
    kept: set[str] = set()
    for root in (schema, *table.values()):
        for union in _unions(root):
            for branch, keep in zip(union, _kept_branches(union, table), strict=True):
                node = resolve(branch, table)
                if keep and isinstance(node, dict) and node.get("type") == "fixed":
                    kept.add(node["name"])
    return kept


def _strip(node: Any, table: Mapping[str, Any], keep: set[str], *, keep_here: bool) -> Any:
    """A copy of ``node`` without logicalType (except where kept) nor fastavro's keys."""
    if isinstance(node, list):
        kept = _kept_branches(node, table)
        return [
            _strip(branch, table, keep, keep_here=here)
            for branch, here in zip(node, kept, strict=True)
        ]
    if not isinstance(node, dict):
        return node
    kept_here = keep_here or node.get("name") in keep
    copy: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("__") or (key == "logicalType" and not kept_here):
            continue
        if key == "type" and isinstance(value, (dict, list)):
            copy[key] = _strip(value, table, keep, keep_here=keep_here)
        elif key == "fields" and isinstance(value, list):
            copy[key] = [
                {**field, "type": _strip(field.get("type"), table, keep, keep_here=False)}
                for field in value
            ]
        elif key in ("items", "values"):
            copy[key] = _strip(value, table, keep, keep_here=False)
        else:
            copy[key] = value
    return copy


# ------------------------------------------------------------------------- compiling


class _Compiler:
    """Builds the converter tree; named types are compiled once, recursion allowed."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.interesting = _interesting_names(named)
        self.memo: dict[str, Converter | None] = {}
        self.in_progress: set[str] = set()

    def compile(self, node: Any) -> Converter | None:
        if isinstance(node, list):
            return self._union(node)
        if isinstance(node, str):
            leaf = leaf_for(node)
            return leaf.convert if leaf is not None else self._named(node)
        if not isinstance(node, dict):
            return None
        kind = node.get("type")
        if isinstance(kind, (dict, list)):
            return self.compile(kind)
        if kind in NAMED_TYPES and isinstance(node.get("name"), str):
            return self._named(node["name"], node)
        if kind == "array":
            items = self.compile(node.get("items"))
            return None if items is None else _array(items)
        if kind == "map":
            values = self.compile(node.get("values"))
            return None if values is None else _map(values)
        leaf = leaf_for(node)
        if leaf is not None:
            return leaf.convert
        return self._named(kind) if isinstance(kind, str) else None

    def _named(self, name: str, definition: Any = None) -> Converter | None:
        node = definition if definition is not None else self.named.get(name)
        if not isinstance(node, dict):
            return None
        if node.get("type") not in ("record", "error"):
            leaf = leaf_for(node)  # enum, fixed
            return leaf.convert if leaf is not None else None
        if name not in self.interesting:
            return None
        if name in self.memo:
            return self.memo[name]
        if name in self.in_progress:  # a recursive reference: bound once compiled
            return _late(self.memo, name)
        self.in_progress.add(name)
        steps = tuple(
            (field["name"], conv)
            for field in node.get("fields", ())
            if (conv := self.compile(field.get("type"))) is not None
        )
        self.in_progress.discard(name)
        converter = _record(steps) if steps else None
        self.memo[name] = converter
        return converter

    def _union(self, branches: list[Any]) -> Converter | None:
        non_null = [b for b in branches if b != "null"]
        if len(non_null) == 1:  # the usual ["null", X]
            inner = self.compile(non_null[0])
            return None if inner is None else _nullable(inner)
        table: dict[type, Converter] = {}
        records: list[tuple[frozenset[str], Converter | None]] = []
        maps: list[Converter | None] = []
        leaves: list[Leaf] = []
        for branch in non_null:
            node = resolve(branch, self.named)
            kind = type_name(node)
            converter = self.compile(branch)
            if kind in ("record", "error"):
                records.append((frozenset(f["name"] for f in node.get("fields", ())), converter))
            elif kind == "map":
                maps.append(converter)
            elif kind == "array":
                if converter is not None:
                    table[list] = converter
            elif isinstance(node, (str, dict)) and (leaf := leaf_for(node)) is not None:
                leaves.append(leaf)
                if leaf.typed is not None and leaf.convert is not None:
                    table.setdefault(leaf.typed, leaf.convert)
        ambiguous = _ambiguous_raw_types(leaves)
        for leaf in leaves:
            if leaf.convert is not None and leaf.raw not in ambiguous:
                table.setdefault(leaf.raw, leaf.convert)
        dict_converter = _dict_converter(records, maps)
        if dict_converter is not None:
            table[dict] = dict_converter
        return _dispatch(table) if table else None


def _dict_converter(
    records: list[tuple[frozenset[str], Converter | None]], maps: list[Converter | None]
) -> Converter | None:
    """The converter for the dicts of a union: one record or map, or a choice by keys."""
    if len(records) + len(maps) == 1:
        return records[0][1] if records else maps[0]
    if any(conv is not None for _, conv in records) or any(maps):
        return _dict_dispatch(tuple(records), maps[0] if maps else None)
    return None


def _interesting_names(named: Mapping[str, Any]) -> set[str]:
    """Named types that hold, at any depth, a value to convert (a fixpoint, so that
    recursive types without such values are never visited)."""
    direct: dict[str, bool] = {}
    refs: dict[str, set[str]] = {}
    for name, node in named.items():
        found: set[str] = set()
        direct[name] = _scan(node, found, top=True)
        refs[name] = found
    interesting = {name for name, hit in direct.items() if hit}
    changed = True
    while changed:
        changed = False
        for name, used in refs.items():
            if name not in interesting and used & interesting:
                interesting.add(name)
                changed = True
    return interesting


def _scan(node: Any, refs: set[str], *, top: bool = False) -> bool:
    """Whether ``node`` itself holds a leaf to convert; named types it uses go to refs."""
    if isinstance(node, list):
        hits = [_scan(branch, refs) for branch in node]  # every branch, for its refs
        return any(hits)
    if isinstance(node, str):
        leaf = leaf_for(node)
        if leaf is None:
            refs.add(node)
        return leaf is not None and leaf.convert is not None
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    if isinstance(kind, (dict, list)):
        return _scan(kind, refs)
    if not top and kind in NAMED_TYPES and isinstance(node.get("name"), str):
        refs.add(node["name"])
        return False
    if kind in ("record", "error"):
        hits = [_scan(field.get("type"), refs) for field in node.get("fields", ())]
        return any(hits)
    if kind == "array":
        return _scan(node.get("items"), refs)
    if kind == "map":
        return _scan(node.get("values"), refs)
    leaf = leaf_for(node)
    if leaf is not None:
        return leaf.convert is not None
    if isinstance(kind, str):
        refs.add(kind)
    return False


# ------------------------------------------------------------------------ containers


def _record(steps: tuple[tuple[str, Converter], ...]) -> Converter:
    def convert(record: Any) -> Any:
        for name, conv in steps:
            record[name] = conv(record[name])
        return record

    return convert


def _array(items: Converter) -> Converter:
    def convert(values: Any) -> Any:
        return [items(v) for v in values]

    return convert


def _map(values: Converter) -> Converter:
    def convert(mapping: Any) -> Any:
        for key, value in mapping.items():
            mapping[key] = values(value)  # replacing values while iterating is allowed
        return mapping

    return convert


def _late(memo: Mapping[str, Converter | None], name: str) -> Converter:
    def convert(value: Any) -> Any:
        conv = memo[name]
        return value if conv is None else conv(value)

    return convert


def _nullable(inner: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return value if value is None else inner(value)

    return convert


def _dispatch(table: dict[type, Converter]) -> Converter:
    get = table.get

    def convert(value: Any) -> Any:
        conv = get(type(value))
        return value if conv is None else conv(value)

    return convert


def _dict_dispatch(
    records: tuple[tuple[frozenset[str], Converter | None], ...], map_converter: Converter | None
) -> Converter:
    def convert(value: Any) -> Any:
        keys = value.keys()
        for names, conv in records:
            if keys == names:
                return value if conv is None else conv(value)
        return value if map_converter is None else map_converter(value)

    return convert
