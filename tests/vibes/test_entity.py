"""The entity rules the simulator applies, and their agreement with the mapping engine."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.errors import MappingError
from bridge.mapping.validate import recipient_value
from bridge.vibes.entity import RECIPIENT_FIELDS, entity_problems, is_valid_recipient


def body(**event_data: Any) -> dict[str, Any]:
    return {"event_type": "order_shipped", "event_data": event_data}


@pytest.mark.parametrize("field", RECIPIENT_FIELDS)
def test_any_one_recipient_field_with_text_is_enough(field: str) -> None:
    assert entity_problems(body(**{field: "id-1"})) == []


@pytest.mark.parametrize(
    ("event_data", "problem"),
    [
        ({"external_person_id": ""}, "event_data.external_person_id must be a non-empty string"),
        ({"mdn": "", "person_id": "p-1"}, "event_data.mdn must be a non-empty string"),
        ({"person_key": None}, "event_data.person_key must be a non-empty string"),
        ({"vibes_device_id": 7}, "event_data.vibes_device_id must be a non-empty string"),
        ({"person_id": {"id": "p"}}, "event_data.person_id must be a non-empty string"),
        ({"order_id": "o-1"}, "event_data must name a recipient"),
    ],
    ids=["empty", "empty-beside-valid", "null", "number", "object", "none-present"],
)
def test_recipient_problems(event_data: dict[str, Any], problem: str) -> None:
    problems = entity_problems(body(**event_data))
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_recipient_problems_never_quote_the_value() -> None:
    problems = entity_problems(body(mdn=12995551234, person_key=["secret-person"]))
    assert len(problems) == 2
    assert not any("1299" in problem or "secret" in problem for problem in problems)


@pytest.mark.parametrize("text", ["", "p", " ", "+12995551234", "\u00e9"])
def test_the_engine_and_the_simulator_agree_on_recipient_text(text: str) -> None:
    """What the engine refuses to send, the simulator refuses to accept, and the reverse."""
    try:
        recipient_value(text, "recipient.mdn")
    except MappingError:
        engine_accepts = False
    else:
        engine_accepts = True
    assert engine_accepts == is_valid_recipient(text)
