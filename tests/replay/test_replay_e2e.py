"""`vibes-bridge replay` against the real broker and simulator, as subprocesses.

Each test first lets `vibes-bridge run` dead-letter records for a real cause,
fixes the cause, and counts what the simulator says it *sent*: each replayed
event exactly once, with the default event id of the original coordinates.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.support.bridge_service import default_event_id, run_replay, start_replay
from tests.support.kafka import produce, read_all
from tests.support.service import ServiceSetup, orders
from tests.support.simulator import SimControl, start_sim
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Orders go to the demo account; VIP orders also to the "other" account, which the
# simulator does not serve at first (404: a non-retryable rejection, dead-lettered).
TWO_ACCOUNT_RULES = """\
rules:
  - name: order-update
    topic: {topic}
    event_type: order_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{order_id: order_id}}
  - name: vip-update
    topic: {topic}
    when: "kind == 'vip'"
    company_key: other
    event_type: vip_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{order_id: order_id}}
"""


def _vip_orders(count: int, vips: int) -> list[tuple[bytes, dict[str, Any]]]:
    records = orders(count, keys=7)
    for _key, value in records[:vips]:
        value["kind"] = "vip"
    return records


def _sent(setup: ServiceSetup, company_key: str) -> list[dict[str, Any]]:
    return [
        event
        for event in setup.control.events()
        if event["outcome"] == "sent" and event["company_key"] == company_key
    ]


def _restart_sim(setup: ServiceSetup, *args: str) -> None:
    """Stop the simulator and start it again on the same port with other options."""
    port = setup.sim.url.rsplit(":", 1)[1]
    setup.control.close()
    assert setup.sim.stop() == 0
    setup.sim = start_sim(("--port", port, *args), setup.tmp_path / "sim-fixed.log")
    setup.control = SimControl(setup.sim.url)


def _dead_letter_run(setup: ServiceSetup, records: int, letters: int, rules: str) -> None:
    """Run the bridge until ``letters`` dead letters are written and everything committed."""
    config = setup.config(rules=rules)
    bridge = setup.start(config)
    wait_until(
        lambda: bridge.metric("vibes_bridge_records_committed_total") == records,
        90,
        "every record finished and committed",
    )
    assert bridge.metric("vibes_bridge_dead_letters_total") == letters
    assert bridge.stop() == 0


def test_rejected_records_are_replayed_once_after_the_fix_and_resume_after_a_kill(
    service: Callable[..., ServiceSetup],
) -> None:
    vips = 40
    setup = service(partitions=2)
    rules = TWO_ACCOUNT_RULES.format(topic=setup.topic)
    config = setup.config(rules=rules, delivery="max_in_flight: 2\n")
    produce(setup.bootstrap, setup.topic, _vip_orders(100, vips))
    _dead_letter_run(setup, 100, vips, rules)
    letters = read_all(setup.bootstrap, setup.dead_letter_topic, vips)
    assert {dict(m.headers())["bridge.http.status"] for m in letters} == {b"404"}

    # Not fixed yet: every record fails again; --requeue puts them back for later.
    failed = run_replay(config, "--requeue")
    assert failed.returncode == 1, failed.stderr
    assert f"failed again: {vips} (rejected: {vips})" in failed.stdout
    assert "rejected (http_404) rule vip-update: source " in failed.stdout
    assert f"replay group: {setup.group}.replay" in failed.stdout
    assert len(read_all(setup.bootstrap, setup.dead_letter_topic, 2 * vips)) == 2 * vips

    # The account now exists. A slow simulator lets the replay be killed half-way.
    _restart_sim(setup, "--company-key", "demo,other", "--latency-ms", "100")
    replay = start_replay(config, setup.tmp_path / "replay-killed.log")
    wait_until(lambda: len(_sent(setup, "other")) >= 10, 60, "the replay half-way")
    replay.send_signal(signal.SIGKILL)
    replay.wait(30)
    sent_before_kill = len(_sent(setup, "other"))
    assert sent_before_kill < vips, "the kill came too late to test resuming"

    resumed = run_replay(config)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "failed again: 0" in resumed.stdout
    sent = _sent(setup, "other")
    assert len(sent) == vips  # none missing, none twice (Vibes' view)
    expected_ids = {
        default_event_id(
            "vip-update",
            setup.topic,
            int(dict(m.headers())["bridge.source.partition"]),
            int(dict(m.headers())["bridge.source.offset"]),
        )
        for m in letters
    }
    assert {event["event_id"] for event in sent} == expected_ids
    # Only the failed rule is replayed: the records' order-update events are not sent again.
    assert setup.control.stats()["sent"] == vips

    received = setup.control.stats()["received"]
    again = run_replay(config)
    assert again.returncode == 0, again.stderr
    assert "selected: 0" in again.stdout
    assert setup.control.stats()["received"] == received  # a finished replay sends nothing


MAPPING_RULES = """\
rules:
  - name: order-update
    topic: {topic}
    event_type: order_update
    recipient: {{external_person_id: {recipient}}}
    event_data: {{order_id: order_id}}
"""


def test_a_mapping_error_is_replayed_with_the_fixed_rules_and_the_original_event_id(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=1)
    records: list[tuple[bytes | None, Any]] = list(orders(5))
    records.insert(2, (b"buyer", {"order_id": "o-b", "buyer_id": "b-1"}))  # offset 2
    produce(setup.bootstrap, setup.topic, records)
    _dead_letter_run(setup, 6, 1, MAPPING_RULES.format(topic=setup.topic, recipient="customer_id"))
    fixed = setup.config(
        "fixed.yaml",
        rules=MAPPING_RULES.format(topic=setup.topic, recipient='"customer_id || buyer_id"'),
    )
    received = setup.control.stats()["received"]

    other_reason = run_replay(fixed, "--reason", "rejected")
    assert other_reason.returncode == 0, other_reason.stderr
    assert "selected: 0, passed over by the filters: 1" in other_reason.stdout

    dry = run_replay(fixed, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    body = orjson.loads(dry.stdout)  # exactly one JSON body on stdout
    expected_id = default_event_id("order-update", setup.topic, 0, 2)
    assert body["event_id"] == expected_id
    assert body["event_data"] == {"external_person_id": "b-1", "order_id": "o-b"}
    assert "replay group:" in dry.stderr
    assert setup.control.stats()["received"] == received  # a dry run sends nothing

    replayed = run_replay(fixed)  # the dry run committed nothing: the letter is still there
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "events delivered: 1" in replayed.stdout
    sent = [e for e in setup.control.events() if e["event_id"] == expected_id]
    assert len(sent) == 1
    assert sent[0]["body"]["event_data"]["external_person_id"] == "b-1"


def test_bad_usage_exits_2(service: Callable[..., ServiceSetup]) -> None:
    setup = service(partitions=1)
    config = setup.config()
    assert run_replay(config, "--since", "yesterday").returncode == 2
    assert run_replay(config, "--reason", "bogus").returncode == 2
    assert run_replay(config, "--dry-run", "--requeue").returncode == 2
    missing = setup.config(
        "missing.yaml", rules=MAPPING_RULES.format(topic=setup.topic, recipient="customer_id")
    )
    text = missing.read_text().replace(setup.dead_letter_topic, "no-such-topic-here")
    missing.write_text(text)
    result = run_replay(missing)
    assert result.returncode == 2
    assert "does not exist" in result.stderr
