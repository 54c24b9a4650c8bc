"""The replay report: counts, failures by reason, the first few by coordinates, no person data."""

from __future__ import annotations

from bridge.dead_letters import dead_letter
from bridge.errors import EventRejected, MappingCode, MappingError
from bridge.records import SourceRecord
from bridge.replay import ReplayReport
from bridge.replay.report import FIRST_FAILURES_SHOWN, INVALID_CALLBACKS_SHOWN, Failure

SECRET_KEY = b"+12125550123"
SECRET_VALUE = b'{"phone": "+12125550123", "name": "Ada"}'


def test_a_clean_replay_exits_0_and_says_what_it_did() -> None:
    report = ReplayReport("vb.replay", "every dead letter", read=3, selected=3)
    report.events_delivered = 3
    assert not report.exit_failed
    text = "\n".join(report.lines())
    assert "replay group: vb.replay" in text
    assert "events delivered: 3" in text
    assert "failed again: 0" in text


def test_failures_are_counted_by_reason_and_the_first_few_listed_without_person_data() -> None:
    report = ReplayReport("g", "s")
    source = SourceRecord("shop.orders", 1, 40, SECRET_VALUE, key=SECRET_KEY)
    for offset in range(FIRST_FAILURES_SHOWN + 2):
        letter = dead_letter(
            source, EventRejected(400, "Ada's phone +12125550123 is bad"), rule="r"
        )
        report.fail_letter(letter, f"dlq[0]@{offset}")
    report.fail_letter(
        dead_letter(source, MappingError(MappingCode.NO_RECIPIENT, "x"), rule="r"), "dlq[0]@99"
    )
    assert report.exit_failed
    assert report.failures == {"rejected": FIRST_FAILURES_SHOWN + 2, "mapping_error": 1}
    assert len(report.first_failures) == FIRST_FAILURES_SHOWN
    text = "\n".join(report.lines())
    assert "failed again: 8 (mapping_error: 1, rejected: 7)" in text
    assert "rejected (http_400) rule r: source shop.orders[1]@40, letter dlq[0]@0" in text
    for secret in ("12125550123", "Ada"):
        assert secret not in text


def test_a_dry_run_reports_what_it_would_send() -> None:
    report = ReplayReport("g", "s", dry_run=True)
    report.events_printed = 2
    assert "events that would be sent: 2" in "\n".join(report.lines())


def test_an_interrupted_replay_exits_1() -> None:
    report = ReplayReport("g", "s", interrupted=True)
    assert report.exit_failed
    assert report.lines()[-1].startswith("interrupted")


def test_an_unreadable_letter_is_a_failure() -> None:
    report = ReplayReport("g", "s")
    report.fail(Failure("not_a_dead_letter", "header x is missing", None, "?", "dlq[0]@3"))
    assert report.failed == 1


def test_invalid_callbacks_are_counted_apart_and_never_fail_a_replay() -> None:
    report = ReplayReport("g", "s", read=4, selected=1)
    report.events_delivered = 1
    for offset in (3, 4, 9):
        report.invalid_callback(f"dlq[0]@{offset}")
    assert report.invalid_callbacks == 3
    assert report.failed == 0
    assert not report.exit_failed
    text = "\n".join(report.lines())
    assert "failed again: 0" in text
    assert "never sent): 3, first 3 at dlq[0]@3, dlq[0]@4, dlq[0]@9" in text


def test_the_invalid_callbacks_listed_are_bounded() -> None:
    report = ReplayReport("g", "s")
    for offset in range(INVALID_CALLBACKS_SHOWN + 7):
        report.invalid_callback(f"dlq[0]@{offset}")
    [line] = [line for line in report.lines() if "invalid callbacks" in line]
    assert f"never sent): {INVALID_CALLBACKS_SHOWN + 7}, first {INVALID_CALLBACKS_SHOWN} at" in line
    assert line.count("dlq[0]@") == INVALID_CALLBACKS_SHOWN


def test_a_report_without_invalid_callbacks_does_not_mention_them() -> None:
    assert not any("invalid callbacks" in line for line in ReplayReport("g", "s").lines())
