"""What a replay did, for the operator: counts, failures by reason, the first few failures.

Failures are named by coordinates, rule, reason and code only: never by key,
value or message text, which may hold a customer's data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from bridge.dead_letters import DeadLetter

FIRST_FAILURES_SHOWN = 5
INVALID_CALLBACKS_SHOWN = 10


class Failure(NamedTuple):
    """One record that failed again (or a letter that could not be read)."""

    reason: str
    code: str
    rule: str | None
    source: str  # topic[partition]@offset of the original record, or "?"
    letter: str  # topic[partition]@offset of the dead letter

    def line(self) -> str:
        rule = f" rule {self.rule}" if self.rule else ""
        return f"  {self.reason} ({self.code}){rule}: source {self.source}, letter {self.letter}"


@dataclass(slots=True)
class ReplayReport:
    """Tallies of one replay; ``exit_failed`` says whether the exit status is 1."""

    group_id: str
    selection: str
    dry_run: bool = False
    read: int = 0
    passed_over: int = 0
    selected: int = 0
    events_delivered: int = 0
    events_printed: int = 0
    skipped: int = 0  # selected letters no rule matches any more
    requeued: int = 0
    # The receiver's invalid_callback letters the filters took: counted and listed
    # by position, never sent and never failures (they were never source records).
    invalid_callbacks: int = 0
    invalid_callback_letters: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    first_failures: list[Failure] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def exit_failed(self) -> bool:
        return self.failed > 0 or self.interrupted

    def fail(self, failure: Failure) -> None:
        self.failures[failure.reason] += 1
        if len(self.first_failures) < FIRST_FAILURES_SHOWN:
            self.first_failures.append(failure)

    def invalid_callback(self, at: str) -> None:
        """An invalid-callback letter at ``at`` (topic[partition]@offset) was taken."""
        self.invalid_callbacks += 1
        if len(self.invalid_callback_letters) < INVALID_CALLBACKS_SHOWN:
            self.invalid_callback_letters.append(at)

    def fail_letter(self, letter: DeadLetter, at: str) -> None:
        """A record failed again: its new dead letter says why and where from."""
        coordinates = letter.source
        source = "?" if coordinates is None else position(*coordinates[:3])
        self.fail(Failure(letter.reason, letter.code or "?", letter.rule, source, at))

    def lines(self) -> list[str]:
        """The report as printed."""
        action = "that would be sent" if self.dry_run else "delivered"
        events = self.events_printed if self.dry_run else self.events_delivered
        out = [
            f"replay group: {self.group_id}",
            f"selection: {self.selection}",
            f"dead letters read: {self.read}, selected: {self.selected}, "
            f"passed over by the filters: {self.passed_over}",
            f"events {action}: {events}, records no rule matches now: {self.skipped}",
            f"failed again: {self.failed}"
            + (
                " (" + ", ".join(f"{r}: {n}" for r, n in sorted(self.failures.items())) + ")"
                if self.failed
                else ""
            ),
        ]
        if self.invalid_callbacks:
            out.append(
                f"invalid callbacks (the receiver's; not source records, never sent): "
                f"{self.invalid_callbacks}, first {len(self.invalid_callback_letters)} at "
                + ", ".join(self.invalid_callback_letters)
            )
        if self.requeued:
            out.append(f"appended to the dead-letter topic again (--requeue): {self.requeued}")
        if self.first_failures:
            out.append(f"first {len(self.first_failures)} failures:")
            out.extend(failure.line() for failure in self.first_failures)
        if self.interrupted:
            out.append("interrupted: progress up to the last finished letter is committed")
        return out


def position(topic: str, partition: int, offset: int) -> str:
    return f"{topic}[{partition}]@{offset}"
