"""The fleet.* keys: defaults, and a TTL too short for the publish rounds refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge.config.model import FleetSettings


def test_defaults() -> None:
    settings = FleetSettings()
    assert settings.enabled
    assert settings.topic == "vibes-bridge.budget"
    assert (settings.publish_interval_seconds, settings.entry_ttl_seconds) == (1.0, 5.0)


def test_a_ttl_shorter_than_two_rounds_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least twice"):
        FleetSettings(publish_interval_seconds=2.0, entry_ttl_seconds=3.0)


@pytest.mark.parametrize("field", ["publish_interval_seconds", "entry_ttl_seconds"])
def test_a_boolean_is_not_a_duration(field: str) -> None:
    with pytest.raises(ValidationError, match="not true or false"):
        FleetSettings.model_validate({field: True})
