"""The configuration file's shape (spec section 1), as frozen pydantic models.

Structure and defaults live here; anything that needs more than one field to
check (expressions, templates, schema paths, cross references) is checked by
``bridge.mapping.compiler``, which knows the engine's rules. Value expressions
are kept as raw YAML data (``ValueSpec``) for the same reason.

Every model forbids unknown keys: a typo must not silently disable a rule.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from bridge.codecs.base import SourceFormat
from bridge.config.durations import Duration
from bridge.records import is_topic_name
from bridge.vibes.entity import MAX_BODY_BYTES

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


def _distinct(topics: list[str]) -> list[str]:
    # A topic listed twice would make the rule emit two identical events per record.
    repeated = [topic for index, topic in enumerate(topics) if topic in topics[:index]]
    if repeated:
        raise ValueError(f"topic {repeated[0]!r} is listed more than once")
    return topics


def _not_bool(value: Any) -> Any:
    # Pydantic takes true as 1 (bool is an int in Python); in a file it is a mistake.
    if isinstance(value, bool):
        raise ValueError("a number is expected here, not true or false")
    return value


def _version_number(value: Any) -> Any:
    # true == 1 and 1.0 == 1 in Python, and pydantic's Literal compares with ==.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("version must be the number 1")
    return value


def _integer_as_text(value: Any) -> Any:
    # "api_version: 2" is how the docs write it; an integer is the same text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _registry_form(value: Any) -> Any:
    # The plain-URL form ("schema_registry: http://...") is the map's url alone.
    return {"url": value} if isinstance(value, str) else value


def _debug_data_form(value: Any) -> Any:
    # One clear message instead of one per member of the union.
    if value is None or value is False or isinstance(value, dict):
        return value
    raise ValueError("debug_data must be a map of fields, or false for none")


NotBool = BeforeValidator(_not_bool)


def _kafka_topic(value: str) -> str:
    # A name Kafka refuses would be accepted here and then consumed or produced to nowhere.
    if not is_topic_name(value):
        raise ValueError(
            f"{value!r} is not a Kafka topic name: 1 to 249 of the characters "
            "a-z A-Z 0-9 . _ - (and not '.' or '..')"
        )
    return value


TopicName = Annotated[str, AfterValidator(_kafka_topic)]


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


def _check_credentials(settings: _Credentials, prefix: str, *, required: bool) -> None:
    """Each secret once (inline or ``*_file``); both or (when optional) neither."""
    given = []
    # Without a prefix (a company's entry) the message's location already names the place.
    at = f"{prefix}." if prefix else ""
    for name in ("username", "password"):
        inline, from_file = getattr(settings, name), getattr(settings, f"{name}_file")
        if inline is not None and from_file is not None:
            raise ValueError(f"give {at}{name} or {at}{name}_file, not both")
        if inline is None and from_file is None and required:
            raise ValueError(f"{at}{name} (or {at}{name}_file) is required")
        given.append(inline is not None or from_file is not None)
    if given[0] != given[1]:
        raise ValueError(f"{at}username and {at}password must be given together")


class _Credentials(_Model):
    """A Basic-auth pair, each half inline (``${VAR}``) or in a file (mounted secrets)."""

    username: SecretStr | None = None
    username_file: str | None = None
    password: SecretStr | None = None
    password_file: str | None = None

    @property
    def has_credentials(self) -> bool:
        """True when a pair is given (the model refuses half of one)."""
        return self.username is not None or self.username_file is not None


class CompanySettings(_Credentials):
    """One Vibes company account (``vibes.companies.<company_key>``): its own login,
    rate and client certificate; whatever it leaves out is the ``vibes`` section's."""

    requests_per_second: Annotated[float | None, NotBool] = Field(default=None, gt=0)
    tls: TlsSettings | None = None

    @model_validator(mode="after")
    def _credentials_given_once(self) -> CompanySettings:
        _check_credentials(self, "", required=False)
        return self


class VibesSettings(_Credentials):
    base_url: str = "https://public-api.vibescm.com"
    company_key: str = Field(min_length=1)
    api_version: Annotated[str, BeforeValidator(_integer_as_text)] = "2"
    requests_per_second: Annotated[float, NotBool] = Field(default=300.0, gt=0)
    timeout_seconds: Annotated[float, NotBool] = Field(default=10.0, gt=0)
    tls: TlsSettings | None = None
    # The encoded body's largest size; a bigger one is a mapping_error (body_too_large).
    max_body_bytes: Annotated[int, NotBool] = Field(default=MAX_BODY_BYTES, ge=256, le=16 * 1024**2)
    # Per company key: its own account. Keys of the map are company keys.
    companies: dict[Annotated[str, Field(min_length=1)], CompanySettings] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _credentials_given_once(self) -> VibesSettings:
        # With companies, the section's own pair is optional: each company may bring its own
        # (the loader checks that every company key in use has a pair from somewhere).
        _check_credentials(self, "vibes", required=not self.companies)
        _http_url(self.base_url, "vibes.base_url")
        return self

    def requests_per_second_for(self, company_key: str) -> float:
        """The company's own rate, or the section's."""
        company = self.companies.get(company_key)
        if company is None or company.requests_per_second is None:
            return self.requests_per_second
        return company.requests_per_second

    def tls_for(self, company_key: str) -> TlsSettings | None:
        """The company's TLS settings, each file it leaves out taken from ``vibes.tls``;
        None when neither gives any."""
        company = self.companies.get(company_key)
        own = None if company is None else company.tls
        if own is None:
            return self.tls
        if self.tls is None:
            return own
        cert, key = own.cert_file, own.key_file
        if cert is None:  # the model gives cert and key together, or neither
            cert, key = self.tls.cert_file, self.tls.key_file
        return TlsSettings(cert_file=cert, key_file=key, ca_file=own.ca_file or self.tls.ca_file)


class SchemaRegistrySettings(_Credentials):
    """Where a confluent-avro source's writer schemas come from, and how to log in there."""

    url: str
    tls: TlsSettings | None = None

    @model_validator(mode="after")
    def _valid(self) -> SchemaRegistrySettings:
        _check_credentials(self, "schema_registry", required=False)
        _http_url(self.url, "schema_registry")
        return self


class CircuitBreakerSettings(_Model):
    """When one company key's circuit opens (bridge.delivery.companies), and for how long.

    ``enabled`` left out: on when the file sends to several company keys, off with
    one, so a single-company bridge retries exactly as it did before isolation
    existed (there is no other company to protect from it).
    """

    enabled: bool | None = None
    failures: Annotated[int, NotBool] = Field(default=5, ge=1, le=10_000)
    open_seconds: Annotated[float, NotBool] = Field(default=1.0, gt=0, le=3600)
    max_open_seconds: Annotated[float, NotBool] = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _open_within_max(self) -> CircuitBreakerSettings:
        if self.open_seconds > self.max_open_seconds:
            raise ValueError("open_seconds must not exceed max_open_seconds")
        return self


class ParkingSettings(_Model):
    """Parking a paused company's events on a topic (docs/isolation.md, "Parking").

    ``enabled`` left out: on when the file sends to several company keys, off with
    one (parking protects the other companies; with none there is nothing to gain,
    and a single-company bridge behaves exactly as before). See
    :meth:`BridgeConfig.parks_events`.
    """

    enabled: bool | None = None
    topic: TopicName = "vibes-bridge.parked"
    # A paused company key parks once paused this long, or once its waiting events
    # reach half of max_pending_records, whichever comes first.
    after: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _positive(self) -> ParkingSettings:
        if self.after.total_seconds() <= 0:
            raise ValueError("after must be a positive duration")
        return self


class DeliverySettings(_Model):
    max_in_flight: Annotated[int, NotBool] = Field(default=64, ge=1, le=1024)
    max_retry_duration: Duration | None = None
    max_event_age: Duration | None = None
    shutdown_timeout_seconds: Annotated[float, NotBool] = Field(default=25.0, gt=0)
    # Back-pressure: consumed records not yet finished, in count and value bytes;
    # at either bound the consumer pauses its partitions until half is left.
    max_pending_records: Annotated[int, NotBool] = Field(default=2000, ge=1)
    max_pending_bytes: Annotated[int, NotBool] = Field(default=32 * 1024 * 1024, ge=1024)
    # Per company key: transient failures in a row open its circuit; one event probes.
    circuit: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)
    # A paused company's events are parked on a topic so they never hold the others back.
    parking: ParkingSettings = Field(default_factory=ParkingSettings)


class ManagementSettings(_Model):
    # All interfaces: Prometheus and the kubelet probes reach it over the pod network.
    host: str = "0.0.0.0"
    port: Annotated[int, NotBool] = Field(default=9464, ge=0, le=65535)


class DeadLetterSettings(_Model):
    topic: TopicName = "vibes-bridge.dlq"


class ReceiptSettings(_Model):
    """Delivery receipts (docs/receipts.md): one record per accepted event (off unless present)."""

    topic: TopicName = "vibes-bridge.receipts"


def _networks(values: list[str]) -> list[str]:
    # Checked here so a typo is a FILE:LINE problem; the receiver parses them again.
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network (CIDR)") from None
    return values


Networks = Annotated[list[str], AfterValidator(_networks)]


class ServerTlsSettings(_Model):
    """The receiver's own certificate, for when no ingress terminates TLS in front of it."""

    cert_file: str
    key_file: str


class CallbackSettings(_Model):
    """The event-processed callback receiver of ``vibes-bridge run`` (off unless present)."""

    # All interfaces: an ingress (or Vibes itself) reaches it over the pod network.
    host: str = "0.0.0.0"
    port: Annotated[int, NotBool] = Field(default=9465, ge=0, le=65535)
    # The URL path is {path}/{token}: Vibes sends callbacks without authentication.
    path: str = Field(default="/vibes/callbacks", pattern=r"^/[A-Za-z0-9._~/-]*$")
    token: SecretStr | None = None
    token_file: str | None = None
    topic: TopicName = "vibes-bridge.callbacks"
    # None: Vibes' published callback addresses (bridge.vibes.callbacks.VIBES_RANGES).
    allow_from: Networks | None = None
    # Proxies whose X-Forwarded-For is believed; empty: the header is ignored.
    trusted_proxies: Networks = Field(default_factory=list)
    max_body_bytes: Annotated[int, NotBool] = Field(default=64 * 1024, ge=1024, le=16 * 1024**2)
    # Vibes waits about two seconds; an answer must leave before that.
    store_timeout_seconds: Annotated[float, NotBool] = Field(default=1.5, gt=0, le=10)
    tls: ServerTlsSettings | None = None

    @model_validator(mode="after")
    def _token_once(self) -> CallbackSettings:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give callbacks.token or callbacks.token_file (exactly one)")
        return self


class FleetSettings(_Model):
    """The budget shared by every process of the group (docs/fleet-budget.md)."""

    # Off: each process plans the whole vibes.requests_per_second on its own.
    enabled: bool = True
    topic: TopicName = "vibes-bridge.budget"
    publish_interval_seconds: Annotated[float, NotBool] = Field(default=1.0, gt=0, le=60)
    # A member whose entry is older than this is gone; at least two publish rounds.
    entry_ttl_seconds: Annotated[float, NotBool] = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _ttl_outlives_rounds(self) -> FleetSettings:
        if self.entry_ttl_seconds < 2 * self.publish_interval_seconds:
            raise ValueError(
                "fleet.entry_ttl_seconds must be at least twice fleet.publish_interval_seconds"
            )
        return self


class TracingSettings(_Model):
    """OpenTelemetry traces (docs/tracing.md); off unless ``enabled``.

    A key left out here falls back to the standard ``OTEL_*`` variable, then to the
    SDK's default: the file wins over the environment, as code does in OpenTelemetry.
    """

    enabled: bool = False
    # The collector's OTLP/HTTP base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: /v1/traces is added.
    endpoint: str | None = None
    # The share of new traces kept (records without a sampled traceparent); the parent's
    # decision is followed when there is one.
    sample_ratio: Annotated[float, NotBool] | None = Field(default=None, ge=0, le=1)
    service_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _endpoint_is_url(self) -> TracingSettings:
        if self.endpoint is not None:
            _http_url(self.endpoint, "tracing.endpoint")
        return self


class SourceSettings(_Model):
    topic: TopicName
    format: SourceFormat = SourceFormat.JSON
    # "schema" would shadow a BaseModel attribute, hence the alias.
    schema_file: str | None = Field(default=None, alias="schema")
    # A URL, or a map with the URL, credentials and TLS (SchemaRegistrySettings).
    schema_registry: Annotated[SchemaRegistrySettings | None, BeforeValidator(_registry_form)] = (
        None
    )

    # protobuf and confluent-protobuf: the message's full name in the descriptor set.
    message: str | None = Field(default=None, min_length=1)
    # confluent-json: validate each document against its registered JSON Schema.
    validate_values: bool = Field(default=False, alias="validate")

    @model_validator(mode="after")
    def _format_needs(self) -> SourceSettings:
        """What each format needs and refuses (docs/configuration.md, "Sources")."""
        problem = _format_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self


def _format_problem(source: SourceSettings) -> str | None:
    kind = source.format
    if kind == "avro" and source.schema_file is None:
        return "a source with format: avro needs schema: (an .avsc file)"
    if kind == "protobuf" and (source.schema_file is None or source.message is None):
        return (
            "a source with format: protobuf needs schema: (a descriptor set, protoc"
            " --descriptor_set_out) and message: (the message's full name)"
        )
    if kind.uses_registry and source.schema_registry is None:
        return f"a source with format: {kind} needs schema_registry: (a URL)"
    if kind == "json" and (source.schema_file or source.schema_registry):
        return "a json source takes no schema or schema_registry"
    if kind == "confluent-protobuf" and (source.schema_file is None) != (source.message is None):
        return "a confluent-protobuf source takes schema: and message: together, or neither"
    if source.message is not None and not kind.is_protobuf:
        return f"message: applies only to protobuf formats, not {kind}"
    if source.validate_values and kind != "confluent-json":
        return f"validate: applies only to format: confluent-json, not {kind}"
    return None


class RuleSettings(_Model):
    name: str = Field(min_length=1)
    topic: Annotated[
        list[TopicName],
        BeforeValidator(_one_or_many),
        AfterValidator(_distinct),
        Field(min_length=1),
    ]
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
    # Overrides delivery.max_event_age for this rule's events.
    max_age: Duration | None = None
    # Which events take the next delivery slots first when the rate budget is the bottleneck.
    priority: Literal["high", "normal", "low"] = "normal"


class BridgeConfig(_Model):
    version: Annotated[Literal[1], BeforeValidator(_version_number)]
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    vibes: VibesSettings
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    management: ManagementSettings = Field(default_factory=ManagementSettings)
    dead_letter: DeadLetterSettings = Field(default_factory=DeadLetterSettings)
    callbacks: CallbackSettings | None = None
    receipts: ReceiptSettings | None = None
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    sources: list[SourceSettings] = Field(min_length=1)
    rules: list[RuleSettings] = Field(min_length=1)

    def company_keys(self) -> frozenset[str]:
        """Every company key the file can send to: the section's, the rules' and the accounts'."""
        keys = {self.vibes.company_key, *self.vibes.companies}
        keys.update(rule.company_key for rule in self.rules if rule.company_key is not None)
        return frozenset(keys)

    def isolates_companies(self) -> bool:
        """Whether isolation's defaults are on: the file sends to several company keys."""
        return len(self.company_keys()) > 1

    def parks_events(self) -> bool:
        """``delivery.parking.enabled``, or when left out, :meth:`isolates_companies`."""
        enabled = self.delivery.parking.enabled
        return self.isolates_companies() if enabled is None else enabled
