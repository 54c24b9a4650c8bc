"""vibes.companies: per-company accounts in the file, and what validate refuses or warns about."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bridge.config.model import CompanySettings, TlsSettings, VibesSettings
from bridge.errors import ConfigError
from bridge.loading import load_bridge
from bridge.service.vibes_delivery import circuit_settings
from tests.support.configs import WriteConfig

SOURCES = """\
sources:
  - topic: shop.orders
    format: json
"""


def _rule(name: str, company_key: str | None = None) -> str:
    company = f", company_key: {company_key}" if company_key else ""
    return (
        f"  - {{name: {name}, topic: shop.orders, event_type: t, "
        f"recipient: {{external_person_id: id}}{company}}}\n"
    )


def _file(tmp_path: Path, vibes: str, rules: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(f"version: 1\nvibes:\n{vibes}{SOURCES}rules:\n{rules}")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, {})
    return [str(problem) for problem in caught.value.problems]


def test_the_single_company_form_is_unchanged(write_config: WriteConfig) -> None:
    with load_bridge(write_config("rules:\n" + _rule("r")), {}) as loaded:
        vibes = loaded.settings.vibes
        assert vibes.companies == {}
        assert vibes.requests_per_second_for("acme") == 300
        assert loaded.credentials.username.get_secret_value() == "user"
        assert loaded.company_tls == {}


def test_companies_may_bring_every_pair_and_the_section_none(tmp_path: Path) -> None:
    (tmp_path / "b-password").write_text("b-pass\n")
    vibes = """\
  company_key: brand-a
  requests_per_second: 300
  companies:
    brand-a: {username: alice, password: a-pass}
    brand-b: {username: bob, password_file: b-password, requests_per_second: 50}
"""
    rules = _rule("to-a") + _rule("to-b", "brand-b")
    with load_bridge(_file(tmp_path, vibes, rules), {}) as loaded:
        settings = loaded.settings.vibes
        assert loaded.credentials.username.get_secret_value() == "alice"  # the default key's
        assert settings.requests_per_second_for("brand-a") == 300
        assert settings.requests_per_second_for("brand-b") == 50
        assert settings.requests_per_second_for("unlisted") == 300


def test_a_company_key_in_use_without_credentials_is_refused_at_its_line(tmp_path: Path) -> None:
    vibes = """\
  company_key: brand-a
  companies:
    brand-a: {username: alice, password: a-pass}
    brand-b: {requests_per_second: 50}
"""
    rules = _rule("to-a") + _rule("to-b", "brand-b") + _rule("to-c", "brand-c")
    problems = _problems(_file(tmp_path, vibes, rules))
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{tmp_path / 'bridge.yaml'}:12: ")
    assert "'brand-b' has no credentials" in problems[0]
    assert problems[1].startswith(f"{tmp_path / 'bridge.yaml'}:13: ")
    assert "'brand-c' has no credentials" in problems[1]
    assert not any("a-pass" in problem for problem in problems)


def test_the_default_company_key_needs_credentials_too(tmp_path: Path) -> None:
    vibes = """\
  company_key: brand-a
  companies:
    brand-b: {username: bob, password: b-pass}
"""
    problems = _problems(_file(tmp_path, vibes, _rule("to-b", "brand-b")))
    assert len(problems) == 1, problems
    assert "'brand-a' has no credentials" in problems[0]


def test_the_section_pair_is_still_required_without_companies(tmp_path: Path) -> None:
    problems = _problems(_file(tmp_path, "  company_key: brand-a\n", _rule("r")))
    assert any("vibes.username (or vibes.username_file) is required" in p for p in problems)


@pytest.mark.parametrize(
    ("company", "message"),
    [
        ({"username": "bob"}, "username and password must be given together"),
        (
            {"username": "bob", "password": "x", "password_file": "f"},
            "give password or password_file, not both",
        ),
        ({"requests_per_second": 0}, "greater than 0"),
        ({"requests_per_second": True}, "not true or false"),
        ({"tls": {"cert_file": "c.pem"}}, "must be given together"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_a_company_entry_is_checked_like_the_section(
    company: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        VibesSettings.model_validate(
            {"company_key": "a", "username": "u", "password": "p", "companies": {"b": company}}
        )
    assert message in str(caught.value)


def test_a_literal_company_password_is_warned_about(tmp_path: Path) -> None:
    vibes = """\
  company_key: brand-a
  username: ${U}
  password: ${P}
  companies:
    brand-b: {username: bob, password: b-pass}
"""
    path = _file(tmp_path, vibes, _rule("to-b", "brand-b"))
    with load_bridge(path, {"U": "u", "P": "p"}) as loaded:
        warnings = [str(warning) for warning in loaded.warnings]
    assert any("vibes.companies.brand-b.password is written in the file" in w for w in warnings)


def test_a_companys_tls_takes_what_it_leaves_out_from_the_section() -> None:
    vibes = VibesSettings(
        company_key="a",
        username=SecretStr("u"),
        password=SecretStr("p"),
        tls=TlsSettings(ca_file="ca.pem", cert_file="common.crt", key_file="common.key"),
        companies={
            "own-cert": CompanySettings(tls=TlsSettings(cert_file="b.crt", key_file="b.key")),
            "own-ca": CompanySettings(tls=TlsSettings(ca_file="other-ca.pem")),
        },
    )
    assert vibes.tls_for("own-cert") == TlsSettings(
        ca_file="ca.pem", cert_file="b.crt", key_file="b.key"
    )
    assert vibes.tls_for("own-ca") == TlsSettings(
        ca_file="other-ca.pem", cert_file="common.crt", key_file="common.key"
    )
    assert vibes.tls_for("unlisted") == vibes.tls


def test_an_unreadable_company_certificate_is_a_problem_at_its_key(tmp_path: Path) -> None:
    vibes = """\
  company_key: brand-a
  username: u
  password: p
  companies:
    brand-b:
      tls: {cert_file: missing.crt, key_file: missing.key}
"""
    problems = _problems(_file(tmp_path, vibes, _rule("to-b", "brand-b")))
    assert len(problems) == 1, problems
    assert ":8: cannot read tls.cert_file" in problems[0]


def test_the_circuit_and_parking_are_off_for_one_company_and_on_for_several(
    write_config: WriteConfig,
) -> None:
    # One company key: a 503 storm is retried event by event exactly as before isolation;
    # a second company key (a rule's) turns the circuit on; the file's word always wins.
    # Parking follows the same rule: with one company there is nobody to protect.
    with load_bridge(write_config("rules:\n" + _rule("r")), {}) as loaded:
        assert not circuit_settings(loaded.settings).enabled
        assert not loaded.settings.parks_events()
    two = "rules:\n" + _rule("r") + _rule("s", "brand-b")
    with load_bridge(write_config(two), {}) as loaded:
        assert circuit_settings(loaded.settings).enabled
        assert loaded.settings.parks_events()
    forced = "delivery:\n  circuit: {enabled: true}\n  parking: {enabled: true}\nrules:\n" + _rule(
        "r"
    )
    with load_bridge(write_config(forced), {}) as loaded:
        assert circuit_settings(loaded.settings).enabled
        assert loaded.settings.parks_events()
