"""Loading a file: every mistake reported at once, at the right line, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bridge.errors import ConfigError
from bridge.loading import load_bridge
from bridge.records import SourceRecord
from tests.support.configs import HEADER, WriteConfig

RULE = (
    "rules:\n  - {name: r, topic: shop.orders, event_type: t, "
    "recipient: {external_person_id: id}}\n"
)


def _problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, environ or {})
    return [str(problem).split(":", 1)[1] for problem in caught.value.problems]


def _assert_reported_exactly(problems: list[str], expected: list[tuple[int, str]]) -> None:
    """Each (line, text) is reported at that line, and nothing else is."""
    for line, text in expected:
        found = any(p.startswith(f"{line}: ") and text in p for p in problems)
        assert found, (line, text, problems)
    assert len(problems) == len(expected), problems


MANY_MISTAKES = """\
rules:
  - name: dup
    topic: shop.orders
    event_type: "order shipped"
    recipient: {external_person_id: id}
  - name: dup
    topic: shop.nowhere
    whn: "a == 'b'"
    event_type: ok
    recipient:
      external_person_id: "a..b"
      email: x
    event_data:
      url: {template: "{unclosed"}
      n: {path: n, as: roman}
      c: 42
      mdn: phone
"""


def test_every_mistake_is_reported_with_its_line(write_config: WriteConfig) -> None:
    path = write_config(MANY_MISTAKES)
    offset = HEADER.count("\n")
    problems = _problems(path)
    expected = [
        (offset + 4, "event_type 'order shipped' may hold only letters"),
        (offset + 6, "duplicate rule name 'dup'"),
        (offset + 7, "topic 'shop.nowhere' has no entry in sources"),
        (offset + 8, "unknown key 'whn' in rules[1]"),
        (offset + 11, "recipient.external_person_id: invalid JMESPath expression"),
        (offset + 12, "unknown recipient 'email'"),
        (offset + 14, "event_data.url: invalid template: unclosed placeholder"),
        (offset + 15, "event_data.n: as must be one of"),
        (offset + 16, "event_data.c: a value is a JMESPath string or a map"),
        (offset + 17, "mdn is a recipient field"),
    ]
    for line, text in expected:
        assert any(p.startswith(f"{line}: ") and text in p for p in problems), (
            line,
            text,
            problems,
        )
    assert len(problems) == len(expected), problems


def test_problems_in_settings_and_rules_come_together(write_config: WriteConfig) -> None:
    header = HEADER.replace("company_key: acme", "company_key: acme\n  timeout_seconds: -1")
    header = header.replace("format: json\n", "format: xml\n", 1)
    path = write_config(
        """\
        rules:
          - name: r
            topic: shop.orders
            event_type: "bad type"
            recipient: {external_person_id: id}
        """,
        header=header,
    )
    problems = _problems(path)
    assert any("vibes.timeout_seconds" in p for p in problems)
    assert any("sources[0].format" in p for p in problems)
    assert any("event_type 'bad type'" in p for p in problems)


def test_an_unset_variable_is_named_and_a_set_one_is_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        HEADER.replace("${TEST_VIBES_USERNAME:-user}", "${VIBES_USER}")
        + "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
        + "    recipient: {external_person_id: id}\n    event_type2: x\n",
        encoding="utf-8",
    )
    problems = _problems(path, {"TEST_VIBES_PASSWORD": "hunter2-very-secret"})
    assert any(p.startswith("4: environment variable VIBES_USER is not set") for p in problems)
    assert all("hunter2" not in p for p in problems)


def test_secret_files_are_read_and_missing_ones_reported(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("from-file\n", encoding="utf-8")
    rules = "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
    rules += "    recipient: {external_person_id: id}\n"
    good = tmp_path / "good.yaml"
    good.write_text(
        HEADER.replace("password: ${TEST_VIBES_PASSWORD:-secret}", "password_file: password")
        + rules,
        encoding="utf-8",
    )
    assert load_bridge(good, {}).credentials.password.get_secret_value() == "from-file"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        HEADER.replace("password: ${TEST_VIBES_PASSWORD:-secret}", "password_file: nope") + rules,
        encoding="utf-8",
    )
    assert any("cannot read password_file" in p for p in _problems(bad))


def test_a_literal_password_is_accepted_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        HEADER.replace("${TEST_VIBES_PASSWORD:-secret}", "plain-text-pw")
        + "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
        + "    recipient: {external_person_id: id}\n",
        encoding="utf-8",
    )
    loaded = load_bridge(path, {})
    [warning] = loaded.warnings
    assert "vibes.password is written in the file" in str(warning)
    assert "plain-text-pw" not in str(warning)


def test_invalid_yaml_points_at_the_line(write_config: WriteConfig) -> None:
    path = write_config("rules: [\n  - name: x\n")
    [problem] = _problems(path)
    assert "invalid YAML" in problem


def test_durations_are_parsed_and_bad_ones_reported(write_config: WriteConfig) -> None:
    rules = "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
    rules += "    recipient: {external_person_id: id}\n"
    header = HEADER + "delivery:\n  max_retry_duration: 1h\n  max_event_age: 2d\n"
    loaded = load_bridge(write_config(rules, header=header), {})
    delivery = loaded.settings.delivery
    assert delivery.max_retry_duration is not None
    assert delivery.max_retry_duration.total_seconds() == 3600
    assert delivery.max_event_age is not None
    assert delivery.max_event_age.total_seconds() == 2 * 86400
    bad = HEADER + "delivery:\n  max_retry_duration: 10 minutes\n"
    assert any(
        "invalid duration" in p for p in _problems(write_config(rules, header=bad, name="b.yaml"))
    )


def test_anchors_merge_keys_and_x_keys_work(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        HEADER
        + "x-common: &common\n  topic: shop.orders\n  recipient: {external_person_id: id}\n"
        + "rules:\n  - <<: *common\n    name: merged\n    event_type: t\n",
        encoding="utf-8",
    )
    engine = load_bridge(path, {}).engine
    assert [rule.name for rule in engine.rules_for("shop.orders")] == ["merged"]


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_bytes(b"\xff\xfe\x00")
    assert _problems(path) == [" the file is not UTF-8 text"]


def test_wrong_types_get_one_plain_message_each(write_config: WriteConfig) -> None:
    path = write_config(
        """\
        rules:
          - name: r
            topic: 5
            event_type: t
            recipient: {external_person_id: id}
            debug_data: true
        """
    )
    problems = _problems(path)
    offset = HEADER.count("\n")
    assert problems == [
        f"{offset + 3}: rules[0].topic: topic must be a topic name or a list of topic names",
        f"{offset + 6}: rules[0].debug_data: debug_data must be a map of fields, or false for none",
    ]


SCHEMAS = Path(__file__).parents[2] / "schemas"

AVRO_HEADER = f"""\
version: 1
vibes: {{company_key: acme, username: u, password: "${{P:-p}}"}}
sources:
  - topic: shop.shipments
    format: avro
    schema: {SCHEMAS / "shipment_event.avsc"}
  - topic: shop.returns
    format: confluent-avro
    schema_registry: http://127.0.0.1:1
    schema: {SCHEMAS / "order_event.avsc"}
"""


def test_field_paths_missing_from_the_avro_schema_are_load_errors(
    write_config: WriteConfig,
) -> None:
    path = write_config(
        """\
        rules:
          - name: shipped
            topic: shop.shipments
            when: "status == 'SHIPPED' && customer.sms_optin"
            event_type: order_shipped
            recipient:
              external_person_id: customer.id
              mdn: {path: customer.phone_number, as: e164, region: US}
            event_data:
              skus: "items[*].sku"
              names: "items[?quantity > `1`].title"
              city: address.city
              trace: _kafka.headers.traceparent
          - name: returned
            topic: shop.returns
            event_type: order_returned
            recipient: {external_person_id: customer.ident}
        """,
        header=AVRO_HEADER,
    )
    problems = _problems(path)
    offset = AVRO_HEADER.count("\n")
    expected = [
        (offset + 4, "customer.sms_optin"),
        (offset + 8, "customer.phone_number"),
        (offset + 11, ".title"),
        (offset + 17, "customer.ident"),
    ]
    _assert_reported_exactly(problems, expected)
    assert all("is not in the Avro schema" in p for p in problems), problems


def test_a_schema_file_that_does_not_parse_is_reported_at_its_line(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    (tmp_path / "broken.avsc").write_text('{"type": "record", "name": "X"', encoding="utf-8")
    header = HEADER.replace(
        "  - topic: shop.shipments\n    format: json\n",
        "  - topic: shop.shipments\n    format: avro\n    schema: broken.avsc\n",
    )
    path = write_config(RULE, header=header)
    [problem] = _problems(path)
    line = header.splitlines().index("    schema: broken.avsc") + 1
    assert problem.startswith(f"{line}: schema file")


def test_yaml_scalars_become_plain_json_values(write_config: WriteConfig) -> None:
    path = write_config(
        """\
        rules:
          - name: constants
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: id}
            event_data:
              ratio: {value: 1.5}
              hex: {value: 0x10}
              day: {value: 2026-11-27}
              moment: {value: 2026-11-27T10:00:00Z}
              text:
                value: |
                  two lines
                  here
        """
    )
    engine = load_bridge(path, {}).engine
    [event] = engine.map({"id": "x"}, SourceRecord("shop.orders", 0, 0, None)).events
    assert orjson.loads(event.body)["event_data"] == {
        "ratio": 1.5,
        "hex": 16,
        "day": "2026-11-27",
        "moment": "2026-11-27T10:00:00+00:00",
        "text": "two lines\nhere\n",
        "external_person_id": "x",
    }


def test_custom_yaml_tags_are_refused(write_config: WriteConfig) -> None:
    path = write_config(
        "rules:\n  - {name: r, topic: shop.orders, event_type: !weird t, "
        "recipient: {external_person_id: id}}\n"
    )
    assert any("custom tags are not allowed" in p for p in _problems(path))


def test_constants_that_cannot_be_converted_are_load_errors(write_config: WriteConfig) -> None:
    path = write_config(
        """\
        rules:
          - name: r
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: id}
            event_data:
              n: {value: seven, as: integer}
              m: {value: null, required: true}
              o: {path: x, required: "yes"}
        """
    )
    offset = HEADER.count("\n")
    _assert_reported_exactly(
        _problems(path),
        [
            (offset + 7, "event_data.n: the value cannot be converted"),
            (offset + 8, "event_data.m: a required value cannot be null"),
            (offset + 9, "event_data.o: required must be true or false"),
        ],
    )


@pytest.mark.parametrize("url", ["localhost:8081", "http://", "ftp://registry", "::::"])
def test_registry_and_vibes_urls_must_be_http_with_a_host(
    write_config: WriteConfig, url: str
) -> None:
    header = HEADER.replace(
        "  - topic: shop.shipments\n    format: json\n",
        f"  - topic: shop.shipments\n    format: confluent-avro\n    schema_registry: '{url}'\n",
    ).replace("company_key: acme", f"company_key: acme\n  base_url: '{url}'")
    problems = _problems(write_config(RULE, header=header))
    assert any("schema_registry must be an http:// or https:// URL" in p for p in problems)
    assert any("vibes.base_url must be an http:// or https:// URL" in p for p in problems)


def test_the_documented_defaults(write_config: WriteConfig) -> None:
    settings = load_bridge(write_config(RULE), {}).settings
    assert settings.kafka.bootstrap_servers == "localhost:9092"
    assert settings.kafka.group_id == "vibes-bridge"
    assert settings.kafka.config == {}
    assert settings.vibes.base_url == "https://public-api.vibescm.com"
    assert settings.vibes.requests_per_second == 300
    assert settings.vibes.timeout_seconds == 10
    assert settings.vibes.api_version == "2"
    assert settings.vibes.tls is None
    assert settings.delivery.max_in_flight == 64
    assert settings.delivery.max_retry_duration is None
    assert settings.delivery.max_event_age is None
    assert settings.delivery.shutdown_timeout_seconds == 25
    assert (settings.management.host, settings.management.port) == ("0.0.0.0", 9464)
    assert settings.dead_letter.topic == "vibes-bridge.dlq"


def test_librdkafka_settings_pass_through_and_tls_needs_cert_and_key(
    write_config: WriteConfig,
) -> None:
    header = HEADER + (
        "kafka:\n  config:\n    security.protocol: SASL_SSL\n    sasl.mechanism: PLAIN\n"
        "    fetch.max.bytes: 1048576\n"
    )
    settings = load_bridge(write_config(RULE, header=header), {}).settings
    assert settings.kafka.config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "fetch.max.bytes": 1048576,
    }
    bad = HEADER.replace("company_key: acme", "company_key: acme\n  tls: {cert_file: c.pem}")
    problems = _problems(write_config(RULE, header=bad, name="tls.yaml"))
    assert any("tls.cert_file and tls.key_file must be given together" in p for p in problems)
