"""The configuration file's shape (spec section 1), as frozen pydantic models.

Structure and defaults live here; anything that needs more than one field to
check (expressions, templates, schema paths, cross references) is checked by
``bridge.mapping.compiler``, which knows the engine's rules. Value expressions
are kept as raw YAML data (``ValueSpec``) for the same reason.

Every model forbids unknown keys: a typo must not silently disable a rule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from bridge.codecs.base import SourceFormat
from bridge.config.durations import Duration

# A value expression exactly as written: a JMESPath string or a {path|template|value: ...} map.
ValueSpec = Any


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http:// or https:// URL with a host")
    return value


def _one_or_many(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ValueError("topic must be a topic name or a list of topic names")
    return value


def _debug_data_form(value: Any) -> Any:
    # One clear message instead of one per member of the union.
    if value is None or value is False or isinstance(value, dict):
        return value
    raise ValueError("debug_data must be a map of fields, or false for none")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class KafkaSettings(_Model):
    bootstrap_servers: str = "localhost:9092"
    group_id: str = "vibes-bridge"
    # Passed through to librdkafka untouched (security.protocol, sasl.*, ssl.* ...).
    config: dict[str, str | int | float | bool] = Field(default_factory=dict)


class TlsSettings(_Model):
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class VibesSettings(_Model):
    base_url: str = "https://public-api.vibescm.com"
    company_key: str = Field(min_length=1)
    username: SecretStr | None = None
    username_file: str | None = None
    password: SecretStr | None = None
    password_file: str | None = None
    api_version: str = "2"
    requests_per_second: float = Field(default=300.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    tls: TlsSettings | None = None

    @model_validator(mode="after")
    def _credentials_given_once(self) -> VibesSettings:
        for name in ("username", "password"):
            inline, from_file = getattr(self, name), getattr(self, f"{name}_file")
            if inline is None and from_file is None:
                raise ValueError(f"vibes.{name} (or vibes.{name}_file) is required")
            if inline is not None and from_file is not None:
                raise ValueError(f"give vibes.{name} or vibes.{name}_file, not both")
        _http_url(self.base_url, "vibes.base_url")
        return self


class DeliverySettings(_Model):
    max_in_flight: int = Field(default=64, ge=1, le=1024)
    max_retry_duration: Duration | None = None
    max_event_age: Duration | None = None
    shutdown_timeout_seconds: float = Field(default=25.0, gt=0)


class ManagementSettings(_Model):
    # All interfaces: Prometheus and the kubelet probes reach it over the pod network.
    host: str = "0.0.0.0"
    port: int = Field(default=9464, ge=0, le=65535)


class DeadLetterSettings(_Model):
    topic: str = Field(default="vibes-bridge.dlq", min_length=1)


class SourceSettings(_Model):
    topic: str = Field(min_length=1)
    format: SourceFormat = SourceFormat.JSON
    # "schema" would shadow a BaseModel attribute, hence the alias.
    schema_file: str | None = Field(default=None, alias="schema")
    schema_registry: str | None = None

    @model_validator(mode="after")
    def _format_needs(self) -> SourceSettings:
        if self.format == "avro" and self.schema_file is None:
            raise ValueError("a source with format: avro needs schema: (an .avsc file)")
        if self.format == "confluent-avro" and self.schema_registry is None:
            raise ValueError("a source with format: confluent-avro needs schema_registry: (a URL)")
        if self.format == "json" and (self.schema_file or self.schema_registry):
            raise ValueError("a json source takes no schema or schema_registry")
        if self.schema_registry is not None:
            _http_url(self.schema_registry, "schema_registry")
        return self


class RuleSettings(_Model):
    name: str = Field(min_length=1)
    topic: Annotated[list[str], BeforeValidator(_one_or_many), Field(min_length=1)]
    when: str | None = None
    event_type: ValueSpec
    event_id: ValueSpec = None
    recipient: dict[str, ValueSpec] = Field(min_length=1)
    event_data: dict[str, ValueSpec] = Field(default_factory=dict)
    # None: the default debug_data; False: none; a map: these fields instead.
    debug_data: Annotated[
        dict[str, ValueSpec] | Literal[False] | None, BeforeValidator(_debug_data_form)
    ] = None
    company_key: str | None = Field(default=None, min_length=1)


class BridgeConfig(_Model):
    version: Literal[1]
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    vibes: VibesSettings
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    management: ManagementSettings = Field(default_factory=ManagementSettings)
    dead_letter: DeadLetterSettings = Field(default_factory=DeadLetterSettings)
    sources: list[SourceSettings] = Field(min_length=1)
    rules: list[RuleSettings] = Field(min_length=1)
