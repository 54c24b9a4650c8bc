"""Each company key's state machine, on a fake clock: pauses, the circuit, holds."""

from __future__ import annotations

import pytest

from bridge.delivery.companies import CircuitSettings, CompanyState, CompanyStates, Transition
from bridge.errors import RetryReason

S5XX = RetryReason.STATUS_5XX
S429 = RetryReason.STATUS_429


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def states(
    failures: int = 3, open_seconds: float = 2.0, max_open: float = 5.0
) -> tuple[CompanyStates, Clock]:
    clock = Clock()
    table = CompanyStates(
        CircuitSettings(failures, open_seconds, max_open),
        credentials_retry_seconds=15.0,
        clock=clock,
    )
    return table, clock


def test_a_new_key_is_healthy_and_seen_once() -> None:
    table, _ = states()
    assert table.seen("a")
    assert not table.seen("a")
    assert table.state("a") is CompanyState.HEALTHY
    assert not table.blocked("a")


def test_failures_in_a_row_open_the_circuit_of_that_key_only() -> None:
    table, _ = states(failures=3)
    assert table.unavailable("a", S5XX, probing=False) is None
    assert table.unavailable("a", S5XX, probing=False) is None
    table.passed("a", probing=False)  # not in a row any more
    assert table.unavailable("a", S5XX, probing=False) is None
    assert table.unavailable("a", S5XX, probing=False) is None
    assert table.unavailable("a", S5XX, probing=False) == Transition(
        "a", CompanyState.HEALTHY, CompanyState.CIRCUIT_OPEN
    )
    assert table.blocked("a")
    assert not table.blocked("b")
    assert table.snapshot() == {"a": CompanyState.CIRCUIT_OPEN}


def test_half_open_one_probe_after_the_open_period_and_longer_after_a_failed_probe() -> None:
    table, clock = states(failures=1, open_seconds=2.0, max_open=5.0)
    table.unavailable("a", S5XX, probing=False)
    assert table.probe_delay("a") == pytest.approx(2.0)
    assert table.take_probe("a")
    assert not table.take_probe("a")  # one probe at a time
    clock.now += 2.0
    assert table.unavailable("a", S5XX, probing=True) is None  # still open, for 4 s now
    table.end_probe("a")
    assert table.probe_delay("a") == pytest.approx(4.0)
    assert table.take_probe("a")
    clock.now += 4.0
    table.unavailable("a", S5XX, probing=True)
    table.end_probe("a")
    assert table.probe_delay("a") == pytest.approx(5.0)  # capped
    assert table.take_probe("a")
    assert table.passed("a", probing=True) == Transition(
        "a", CompanyState.CIRCUIT_OPEN, CompanyState.HEALTHY
    )
    table.end_probe("a")
    table.unavailable("a", S5XX, probing=False)  # a fresh open starts short again
    assert table.probe_delay("a") == pytest.approx(2.0)


def test_only_a_probe_ends_a_pause() -> None:
    table, _ = states(failures=1)
    table.unavailable("a", S5XX, probing=False)
    assert table.passed("a", probing=False) is None  # sent before the circuit opened
    assert table.blocked("a")
    table.credentials_rejected("b")
    assert table.passed("b", probing=False) is None
    assert table.state("b") is CompanyState.CREDENTIALS_REJECTED


def test_credentials_pause_probes_slowly_and_transient_answers_prove_nothing() -> None:
    table, _ = states(failures=1)
    assert table.credentials_rejected("a") == Transition(
        "a", CompanyState.HEALTHY, CompanyState.CREDENTIALS_REJECTED
    )
    assert table.credentials_rejected("a") is None
    assert table.probe_delay("a") == 15.0
    assert table.unavailable("a", S5XX, probing=True) is None
    assert table.unavailable("a", S429, probing=True) is None
    assert table.state("a") is CompanyState.CREDENTIALS_REJECTED
    assert table.passed("a", probing=True) is not None
    assert table.state("a") is CompanyState.HEALTHY


def test_a_429_holds_without_blocking_or_counting_as_a_failure() -> None:
    table, _ = states(failures=2)
    assert table.unavailable("a", S429, probing=False) == Transition(
        "a", CompanyState.HEALTHY, CompanyState.HELD
    )
    assert not table.blocked("a")
    for _ in range(5):
        table.unavailable("a", S429, probing=False)
    assert table.state("a") is CompanyState.HELD
    assert table.passed("a", probing=False) == Transition(
        "a", CompanyState.HELD, CompanyState.HEALTHY
    )


def test_a_429_to_a_half_open_probe_closes_the_circuit() -> None:
    table, _ = states(failures=1)
    table.unavailable("a", S5XX, probing=False)
    assert table.take_probe("a")
    assert table.unavailable("a", S429, probing=True) == Transition(
        "a", CompanyState.CIRCUIT_OPEN, CompanyState.HELD
    )
    assert not table.blocked("a")


def test_readiness_needs_one_key_whose_credentials_pass() -> None:
    table, _ = states()
    assert not table.all_credentials_rejected()  # nothing seen yet
    table.seen("a")
    table.seen("b")
    table.credentials_rejected("a")
    assert not table.all_credentials_rejected()
    assert table.any_other_in("b", CompanyState.CREDENTIALS_REJECTED)
    assert not table.any_other_in("a", CompanyState.CREDENTIALS_REJECTED)
    table.credentials_rejected("b")
    assert table.all_credentials_rejected()


def test_circuit_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="circuit"):
        CircuitSettings(failures=0)
    with pytest.raises(ValueError, match="circuit"):
        CircuitSettings(open_seconds=10.0, max_open_seconds=5.0)


def test_a_disabled_circuit_never_pauses_a_key_for_failures_or_429s() -> None:
    # With one company there is nobody to protect: each event retries on its own.
    table = CompanyStates(
        CircuitSettings(failures=1, enabled=False), credentials_retry_seconds=15.0
    )
    table.seen("a")
    for reason in (S5XX, S5XX, S429, S5XX):
        assert table.unavailable("a", reason, probing=False) is None
    assert table.state("a") is CompanyState.HEALTHY
    assert not table.blocked("a")
    assert table.credentials_rejected("a") is not None  # 401/403 still close its gate
