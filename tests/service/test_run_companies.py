"""Per-company accounts (vibes.companies) in `vibes-bridge run`, against the real broker and
the simulator with a user per company key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.kafka import produce
from tests.support.service import ServiceSetup
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PER_BRAND = 20


def _brand_records() -> list[tuple[bytes, dict[str, object]]]:
    """Both brands' records interleaved on one partition; each brand its own customers."""
    records = []
    for number in range(2 * PER_BRAND):
        brand = "a" if number % 2 == 0 else "b"
        customer = f"{brand}-{number % 5}"
        value = {"brand": brand, "customer_id": customer, "seq": number}
        records.append((customer.encode(), value))
    return records


def test_each_company_signs_with_its_own_user_and_a_rejected_one_pauses_only_itself(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(
        partitions=1,
        sim_args=(
            "--company-key",
            "demo,other",
            "--company-user",
            "demo=alice:a-pass",
            "--company-user",
            "other=bob:b-pass",
        ),
    )
    secret = setup.tmp_path / "bob-password"
    secret.write_text("wrong\n")
    rules = f"""\
rules:
  - name: brand-a
    topic: {setup.topic}
    when: "brand == 'a'"
    event_type: order_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{seq: seq}}
  - name: brand-b
    topic: {setup.topic}
    when: "brand == 'b'"
    company_key: other
    event_type: order_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{seq: seq}}
"""
    vibes = f"""\
companies:
  demo: {{username: alice, password: a-pass}}
  other: {{username: bob, password_file: {secret}}}
"""
    produce(setup.bootstrap, setup.topic, _brand_records())
    bridge = setup.start(setup.config(rules=rules, vibes=vibes))

    def sent(company_key: str) -> int:
        return sum(
            1
            for event in setup.control.events()
            if event["outcome"] == "sent" and event["company_key"] == company_key
        )

    # Brand A's account works: all of its events go while brand B's are paused.
    wait_until(lambda: sent("demo") == PER_BRAND, 60, "brand A delivered")
    rejected = "vibes_bridge_company_credentials_rejected"
    wait_until(lambda: bridge.metric(rejected, company_key="other") == 1, 30, "B's gauge")
    assert bridge.metric(rejected, company_key="demo") == 0
    assert bridge.metric("vibes_bridge_credentials_failing") == 1
    assert sent("other") == 0
    # B's secret is rotated: its events follow, nothing dead-lettered, nothing twice.
    secret.write_text("b-pass\n")
    wait_until(lambda: sent("other") == PER_BRAND, 60, "brand B delivered")
    wait_until(lambda: bridge.metric(rejected, company_key="other") == 0, 30, "B's gauge")
    assert bridge.metric("vibes_bridge_credentials_failing") == 0
    assert bridge.metric("vibes_bridge_dead_letters_total") == 0
    assert setup.control.stats()["duplicates"] == 0
    log = bridge.log_path.read_text()
    assert "b-pass" not in log
    assert "a-pass" not in log
