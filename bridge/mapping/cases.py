"""Mapping unit tests: YAML cases of a record in and the events expected out.

The format (documented in docs/mapping-tests.md)::

    cases:
      - name: a shipped order texts the customer
        topic: shop.shipments
        record:
          value: {...}             # the decoded record value
          key: "k-1"               # optional; also headers, partition, offset, timestamp
        expect:                    # the events, in rule order ([] when no rule matches)
          - rule: order-shipped    # optional
            event_type: order_shipped
            event_data: {...}      # each key given is compared exactly; keys left out are not
        errors:                    # optional: mapping errors the case expects
          - {rule: other-rule, code: no_recipient}

Comparison is exact on what a case states, so a case stays readable: leave out
``event_id`` or ``debug_data`` and they are not compared.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bridge.config.yaml_source import SourceDocument
from bridge.errors import Problem
from bridge.mapping.engine import Engine, MappingResult
from bridge.records import MAX_OFFSET, MAX_PARTITION, MAX_TIMESTAMP, SourceRecord

_BODY_KEYS = ("event_id", "event_type", "event_data", "debug_data")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseRecord(_Strict):
    value: dict[str, Any]
    key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    partition: int = Field(default=0, ge=0, le=MAX_PARTITION)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    timestamp: int = Field(default=0, ge=0, le=MAX_TIMESTAMP)


class ExpectedEvent(_Strict):
    rule: str | None = None
    company_key: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    event_data: dict[str, Any] | None = None
    debug_data: dict[str, Any] | None = None


class ExpectedError(_Strict):
    rule: str
    code: str | None = None


class Case(_Strict):
    name: str
    topic: str
    record: CaseRecord
    expect: list[ExpectedEvent] | None = None
    errors: list[ExpectedError] | None = None

    @model_validator(mode="after")
    def _states_an_outcome(self) -> Case:
        # A case that states nothing would pass whatever the rules do.
        if self.expect is None and self.errors is None:
            raise ValueError("a case states expect:, errors: or both")
        return self


class CaseFile(_Strict):
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """One case's verdict; ``diff`` explains a failure."""

    name: str
    line: int | None
    passed: bool
    diff: str


def parse_cases(document: SourceDocument) -> tuple[list[Case], list[Problem]]:
    """The cases, or the problems in the file with their lines."""
    try:
        return list(CaseFile.model_validate(document.data).cases), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
            where = ".".join(str(part) for part in loc)
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(document.problem(loc, f"{where}: {message}"))
        return [], problems


def run_case(engine: Engine, case: Case, line: int | None) -> CaseOutcome:
    """Map the case's record and compare with what it expects."""
    if not engine.rules_for(case.topic):
        return CaseOutcome(case.name, line, False, f"no rule reads topic {case.topic!r}\n")
    result = engine.map(dict(case.record.value), _record(case))
    expected, actual = _comparable(case, result)
    if expected == actual:
        return CaseOutcome(case.name, line, True, "")
    diff = difflib.unified_diff(
        _pretty(expected), _pretty(actual), fromfile="expected", tofile="actual", lineterm=""
    )
    return CaseOutcome(case.name, line, False, "\n".join(diff) + "\n")


def _record(case: Case) -> SourceRecord:
    record = case.record
    return SourceRecord(
        topic=case.topic,
        partition=record.partition,
        offset=record.offset,
        value=None,
        key=None if record.key is None else record.key.encode("utf-8"),
        timestamp_ms=record.timestamp,
        headers=tuple((name, value.encode("utf-8")) for name, value in record.headers.items()),
    )


def _comparable(case: Case, result: MappingResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides reduced to what the case states, so the diff shows only what matters."""
    expected: dict[str, Any] = {}
    actual: dict[str, Any] = {}
    if case.expect is not None:
        expected["events"] = [item.model_dump(exclude_none=True) for item in case.expect]
        actual_events = []
        for index, event in enumerate(result.events):
            full = {
                "rule": event.rule,
                "company_key": event.company_key,
                **orjson.loads(event.body),
            }
            stated = case.expect[index] if index < len(case.expect) else None
            keys = stated.model_dump(exclude_none=True) if stated else dict.fromkeys(_BODY_KEYS)
            actual_events.append({key: full[key] for key in keys if key in full})
        actual["events"] = actual_events
    if case.errors is not None:
        expected["errors"] = [item.model_dump(exclude_none=True) for item in case.errors]
        actual["errors"] = [
            {"rule": failure.rule, "code": failure.error.code}
            if stated is None or stated.code is not None
            else {"rule": failure.rule}
            for failure, stated in _pair(result, case.errors)
        ]
    elif result.failures:
        actual["errors"] = [
            {"rule": failure.rule, "code": failure.error.code, "message": failure.error.message}
            for failure in result.failures
        ]
    return expected, actual


def _pair(
    result: MappingResult, stated: list[ExpectedError]
) -> list[tuple[Any, ExpectedError | None]]:
    return [
        (failure, stated[index] if index < len(stated) else None)
        for index, failure in enumerate(result.failures)
    ]


def _pretty(value: Any) -> list[str]:
    return (
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode().splitlines()
    )
