"""The ``tracing:`` section: off by default, and its mistakes caught at load."""

from __future__ import annotations

import pytest

from bridge.errors import ConfigError
from bridge.loading import load_bridge
from tests.support.configs import WriteConfig

RULE = """\
rules:
  - name: r
    topic: shop.orders
    event_type: t
    recipient: {external_person_id: id}
"""


def test_tracing_is_off_by_default(write_config: WriteConfig) -> None:
    tracing = load_bridge(write_config(RULE)).settings.tracing
    assert not tracing.enabled
    assert tracing.endpoint is None
    assert tracing.sample_ratio is None


def test_a_full_section_loads(write_config: WriteConfig) -> None:
    section = (
        "tracing:\n  enabled: true\n  endpoint: http://otel-collector:4318\n"
        "  sample_ratio: 0.25\n  service_name: bridge-eu\n"
    )
    tracing = load_bridge(write_config(section + RULE)).settings.tracing
    assert tracing.enabled
    assert tracing.endpoint == "http://otel-collector:4318"
    assert tracing.sample_ratio == 0.25
    assert tracing.service_name == "bridge-eu"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  enabled: true\n  endpoint: otel-collector:4318\n", "http:// or https:// URL"),
        ("  enabled: true\n  sample_ratio: 1.5\n", "less than or equal to 1"),
        ("  enabled: true\n  sample_ratio: true\n", "not true or false"),
        ("  enabled: true\n  exporter: zipkin\n", "exporter"),
    ],
)
def test_mistakes_are_load_errors(write_config: WriteConfig, section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_bridge(write_config("tracing:\n" + section + RULE))
    assert any(message in problem.message for problem in caught.value.problems), [
        problem.message for problem in caught.value.problems
    ]
