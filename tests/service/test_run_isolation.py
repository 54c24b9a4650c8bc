"""Issue 17 item 2: one company's failure pauses only its own deliveries (real broker, simulator).

Two company keys share the same partitions and the same customer keys. Company A
("acme") fails mid-run three ways: its credentials are rejected, its endpoint
answers 503 (the circuit opens), or it is held by 429s. Company B ("demo") must
finish while A is still failing; A must drain after it recovers with nothing lost
or doubled and each customer's events in record order. The benchmark with the
full 60-second outage and B's rate against its rate alone is bench/isolation.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.kafka import committed_offsets, produce
from tests.support.service import COMPANY_A as A
from tests.support.service import COMPANY_B as B
from tests.support.service import TWO_COMPANY_RULES as RULES
from tests.support.service import ServiceSetup, interleaved
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PER_COMPANY = 120
PARTITIONS = 2
RATE = 20  # per company key: B alone takes about 6 s


def sent(setup: ServiceSetup, company_key: str) -> list[dict[str, Any]]:
    return [
        e
        for e in setup.control.events()
        if e["outcome"] == "sent" and e["company_key"] == company_key
    ]


def start(service: Callable[..., ServiceSetup]) -> tuple[ServiceSetup, Any]:
    setup = service(partitions=PARTITIONS, sim_args=("--company-key", f"{B},{A}"))
    produce(setup.bootstrap, setup.topic, interleaved(PER_COMPANY))
    config = setup.config(
        rules=RULES.format(topic=setup.topic),
        vibes=f"username: demo\npassword: demo\nrequests_per_second: {RATE}\n",
        delivery="circuit: {failures: 3, open_seconds: 0.5, max_open_seconds: 2}\n",
        fleet="enabled: false\n",
    )
    bridge = setup.start(config)
    wait_until(lambda: len(sent(setup, A)) >= 15, 30, "company A delivering")
    return setup, bridge


def check_drained(setup: ServiceSetup, bridge: Any) -> None:
    """Every event of both companies sent once, in per-customer order; everything committed."""
    wait_until(lambda: len(sent(setup, A)) == PER_COMPANY, 45, "company A drained")
    for company in (A, B):
        events = sent(setup, company)
        assert len({e["event_id"] for e in events}) == len(events) == PER_COMPANY, company
        sequences: dict[str, list[int]] = defaultdict(list)
        for event in events:
            data = event["body"]["event_data"]
            sequences[data["external_person_id"]].append(data["seq"])
        for customer, sequence in sequences.items():
            assert sequence == sorted(sequence), (company, customer)
    assert setup.control.stats()["duplicates"] == 0
    assert bridge.metric("vibes_bridge_dead_letters_total") == 0
    wait_until(
        lambda: (
            sum(committed_offsets(setup.bootstrap, setup.group, setup.topic, PARTITIONS))
            == 2 * PER_COMPANY
        ),
        30,
        "every offset committed",
    )
    wait_until(
        lambda: bridge.metric("vibes_bridge_company_state", company_key=A, state="healthy") == 1,
        10,
        "company A healthy again",
    )
    assert bridge.stop() == 0


def b_finishes_while_a_fails(setup: ServiceSetup) -> int:
    wait_until(lambda: len(sent(setup, B)) == PER_COMPANY, 40, "company B finished")
    a_sent = len(sent(setup, A))
    assert a_sent < PER_COMPANY  # B finished while A was still failing
    return a_sent


def test_rejected_credentials_of_one_company_pause_only_it(
    service: Callable[..., ServiceSetup],
) -> None:
    setup, bridge = start(service)
    setup.control.outage(A, 401)
    b_finishes_while_a_fails(setup)
    assert (
        bridge.metric("vibes_bridge_company_state", company_key=A, state="credentials_rejected")
        == 1
    )
    assert bridge.metric("vibes_bridge_company_state", company_key=B, state="healthy") == 1
    assert bridge.metric("vibes_bridge_credentials_failing") == 1
    assert bridge.get("/readyz").status_code == 200  # B's credentials pass
    errors = [line for line in bridge.log_lines() if "rejected the credentials" in line["message"]]
    assert len(errors) == 1
    assert f"company key {A}" in errors[0]["message"]
    setup.control.outage(A, 0)  # the credentials are fixed
    check_drained(setup, bridge)


def test_a_failing_endpoint_opens_only_its_circuit(service: Callable[..., ServiceSetup]) -> None:
    setup, bridge = start(service)
    setup.control.outage(A, 503)
    b_finishes_while_a_fails(setup)
    assert bridge.metric("vibes_bridge_circuit_opens_total", company_key=A) >= 1
    assert bridge.metric("vibes_bridge_circuit_opens_total", company_key=B) == 0
    assert bridge.metric("vibes_bridge_company_state", company_key=A, state="circuit_open") == 1
    assert bridge.get("/readyz").status_code == 200
    setup.control.outage(A, 0)
    check_drained(setup, bridge)


def test_a_company_held_by_429s_holds_only_itself(service: Callable[..., ServiceSetup]) -> None:
    setup, bridge = start(service)
    setup.control.outage(A, 429, retry_after_s=1)
    b_finishes_while_a_fails(setup)
    assert bridge.metric("vibes_bridge_company_state", company_key=A, state="held") == 1
    assert bridge.metric("vibes_bridge_circuit_opens_total", company_key=A) == 0
    setup.control.outage(A, 0)
    check_drained(setup, bridge)


# ---------------------------------------------------------------- parking past the pending bound

SMALL_BOUND = 30  # A's waiting events reach half of it within a second of its outage


def start_parking(service: Callable[..., ServiceSetup]) -> tuple[ServiceSetup, Any, str]:
    """Two companies with a pending bound far below B's work, and a parked topic."""
    setup = service(partitions=PARTITIONS, sim_args=("--company-key", f"{B},{A}"))
    parked = setup.new_topic(PARTITIONS, None)
    produce(setup.bootstrap, setup.topic, interleaved(PER_COMPANY))
    config = setup.config(
        rules=RULES.format(topic=setup.topic),
        vibes=f"username: demo\npassword: demo\nrequests_per_second: {RATE}\n",
        delivery=(
            f"max_pending_records: {SMALL_BOUND}\n"
            "circuit: {failures: 3, open_seconds: 0.5, max_open_seconds: 2}\n"
            f"parking: {{topic: {parked}, after: 60s}}\n"
        ),
        fleet="enabled: false\n",
    )
    bridge = setup.start(config)
    wait_until(lambda: len(sent(setup, A)) >= 10, 30, "company A delivering")
    return setup, bridge, parked


@pytest.mark.parametrize(
    ("status", "retry_after"), [(401, None), (503, None), (429, 1)], ids=["401", "503", "429"]
)
def test_a_paused_company_past_the_pending_bound_is_parked(
    service: Callable[..., ServiceSetup], status: int, retry_after: int | None
) -> None:
    """Without parking B stalls once A's waiting records fill the bound (30 of 240): here B
    finishes while A is down, the source partitions commit past A's parked records, and A
    drains after recovery exactly once, in per-customer order, with no dead letters."""
    setup, bridge, _parked = start_parking(service)
    if retry_after is None:
        setup.control.outage(A, status)
    else:
        setup.control.outage(A, status, retry_after_s=retry_after)
    b_finishes_while_a_fails(setup)
    wait_until(
        lambda: (
            sum(committed_offsets(setup.bootstrap, setup.group, setup.topic, PARTITIONS))
            == 2 * PER_COMPANY
        ),
        30,
        "the source topic committed past A's parked records while A is down",
    )
    assert len(sent(setup, A)) < PER_COMPANY
    assert bridge.metric("vibes_bridge_events_parked_total", company_key=A) > 0
    assert bridge.metric("vibes_bridge_events_parked_total", company_key=B) == 0
    setup.control.outage(A, 0)
    check_drained(setup, bridge)
