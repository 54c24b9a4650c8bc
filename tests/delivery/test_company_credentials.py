"""Per-company accounts at the delivery edge: each company key signs with its own
credentials, and Vibes rejecting one company's pauses that key only."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bridge.config.model import CompanySettings, VibesSettings
from bridge.delivery import CompanyCredentials, CredentialsSource, Delivered, NullObserver
from bridge.delivery.outcomes import DeliveryUnavailable, Outcome
from bridge.errors import RetryReason
from bridge.loading import LoadedBridge, load_bridge
from bridge.service.vibes_delivery import vibes_delivery
from bridge.vibes.api import basic_auth_header
from tests.config.test_registry_settings import certificates, tls_registry  # noqa: F401
from tests.delivery.helpers import json_answer, mapped, rig
from tests.support.schema_registry import TestSchemaRegistry

ALICE = basic_auth_header("alice", "a-pass")
BOB = basic_auth_header("bob", "b-pass")
COMMON = basic_auth_header("user", "common-pass")


def _settings(**companies: CompanySettings) -> VibesSettings:
    return VibesSettings(
        company_key="brand-a",
        username=SecretStr("user"),
        password=SecretStr("common-pass"),
        companies=companies,
    )


def test_each_company_key_signs_with_its_own_pair_or_the_common_one() -> None:
    settings = _settings(
        **{"brand-a": CompanySettings(username=SecretStr("alice"), password=SecretStr("a-pass"))}
    )
    credentials = CompanyCredentials.from_settings(settings, Path("bridge.yaml"))
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.headers["Authorization"]
        return json_answer(200)

    r = rig(handler, credentials=credentials)

    async def scenario() -> None:
        await r.deliverer.deliver(mapped("e-1", company_key="brand-a"))
        await r.deliverer.deliver(mapped("e-2", company_key="brand-z"))

    asyncio.run(r.time.run(scenario()))
    assert seen == {
        "/companies/brand-a/events": ALICE,
        "/companies/brand-z/events": COMMON,  # not listed: the vibes section's pair
    }


def test_a_company_without_any_pair_is_a_key_error_not_a_request() -> None:
    credentials = CompanyCredentials(None, {"brand-a": CredentialsSource.fixed("a", "b")})
    assert credentials.for_company("brand-a").current() == ("a", "b")
    with pytest.raises(KeyError):
        credentials.for_company("brand-b")


def test_a_401_for_one_company_pauses_that_key_only() -> None:
    credentials = CompanyCredentials(
        None,
        {
            "brand-a": CredentialsSource.fixed("alice", "a-pass"),
            "brand-b": CredentialsSource.fixed("bob", "wrong"),
        },
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return json_answer(200 if request.headers["Authorization"] in (ALICE, BOB) else 401)

    r = rig(handler, credentials=credentials, credentials_retry_seconds=15.0)

    async def scenario() -> list[Delivered]:
        paused = asyncio.ensure_future(r.deliverer.deliver(mapped("b-0", company_key="brand-b")))
        await r.time.sleep(1.0)
        assert r.deliverer.rejected_company_keys() == {"brand-b"}
        # brand-a is not behind brand-b's gate: all of its events go at once.
        started = r.time.now
        delivered = [
            await r.deliverer.deliver(mapped(f"a-{i}", company_key="brand-a")) for i in range(5)
        ]
        assert r.time.now - started < 1.0
        assert not paused.done()
        paused.cancel()
        return delivered

    delivered = asyncio.run(r.time.run(scenario()))
    assert delivered == [Delivered(200, 1)] * 5
    assert r.observer.company_credentials == [("brand-b", True)]
    assert r.observer.credentials == [True]  # the spec's gauge: some company is rejected


def test_a_probe_rereads_only_its_own_companys_files(tmp_path: Path) -> None:
    secret = tmp_path / "b-password"
    secret.write_text("wrong\n")
    settings = _settings(
        **{"brand-b": CompanySettings(username=SecretStr("bob"), password_file=str(secret))}
    )
    credentials = CompanyCredentials.from_settings(settings, tmp_path / "bridge.yaml")

    def handler(request: httpx.Request) -> httpx.Response:
        return json_answer(200 if request.headers["Authorization"] in (COMMON, BOB) else 401)

    r = rig(handler, credentials=credentials, credentials_retry_seconds=15.0)

    async def scenario() -> Delivered:
        delivery = asyncio.ensure_future(r.deliverer.deliver(mapped(company_key="brand-b")))
        await r.time.sleep(5.0)
        assert r.deliverer.rejected_company_keys() == {"brand-b"}
        assert await r.deliverer.deliver(mapped(company_key="brand-a")) == Delivered(200, 1)
        replacement = secret.with_name("b-password.new")
        replacement.write_text("b-pass\n")
        replacement.replace(secret)
        return await delivery

    assert asyncio.run(r.time.run(scenario())) == Delivered(200, 2)
    assert r.deliverer.rejected_company_keys() == frozenset()
    assert r.observer.company_credentials == [("brand-b", True), ("brand-b", False)]
    assert r.observer.credentials == [True, False]


def test_a_company_with_its_own_client_certificate_gets_its_own_connections(
    tmp_path: Path,
    certificates: Path,  # noqa: F811 (the fixture)
    tls_registry: TestSchemaRegistry,  # noqa: F811 (the fixture): an HTTPS server wanting a client certificate
) -> None:
    for name in ("client.crt", "client.key"):
        shutil.copy(certificates / name, tmp_path / name)
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "version: 1\n"
        "vibes:\n"
        f"  base_url: {tls_registry.url}\n"
        "  company_key: brand-a\n"
        "  username: u\n"
        "  password: p\n"
        f"  tls: {{ca_file: {certificates / 'ca.crt'}}}\n"
        "  companies:\n"
        "    brand-b: {tls: {cert_file: client.crt, key_file: client.key}}\n"
        "sources: [{topic: shop.orders, format: json}]\n"
        "rules: [{name: r, topic: shop.orders, event_type: t, company_key: brand-b,"
        " recipient: {external_person_id: id}}]\n"
    )

    async def post(loaded: LoadedBridge, company_key: str) -> Outcome:
        client = vibes_delivery(loaded, NullObserver()).client
        try:
            return await client.post_event(company_key, b"{}")
        finally:
            await client.aclose()

    with load_bridge(path, {}) as loaded:
        assert set(loaded.company_tls) == {"brand-b"}
        without = asyncio.run(post(loaded, "brand-a"))
        with_certificate = asyncio.run(post(loaded, "brand-b"))
    # The server refuses the handshake without a client certificate; with brand-b's
    # own it answers (whatever it answers: the registry knows no events path).
    assert isinstance(without, DeliveryUnavailable)
    assert without.reason is RetryReason.CONNECTION
    assert with_certificate.status is not None
