"""Which of a replayed record's events to send: the failed rule's, when the letter names one.

A record that fans out to several rules is dead-lettered per failing rule
(``bridge.rule``); its other events were delivered at the time. Replaying only
the named rule keeps the replay from sending the others again, which Vibes
would ignore only while it remembers their event ids (and only if the ids are
unique per message). A letter without a rule (a decode error), or whose rule no
longer exists in the current file (renamed or replaced by the fix), replays
every rule of the record's topic.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

from bridge.dead_letters import DeadLetter
from bridge.mapping.engine import MappedEvent


class Scoped(NamedTuple):
    """The events and dead letters of a record that belong to the replayed rule."""

    events: tuple[MappedEvent, ...]
    dead_letters: tuple[DeadLetter, ...]


def narrow_to_rule(
    events: Sequence[MappedEvent],
    dead_letters: Sequence[DeadLetter],
    rule: str | None,
    current_rules: Collection[str],
) -> Scoped | None:
    """Only ``rule``'s events and failures; None when the whole record replays (no
    rule named, or the rule no longer exists)."""
    if rule is None or rule not in current_rules:
        return None
    return Scoped(
        tuple(event for event in events if event.rule == rule),
        tuple(letter for letter in dead_letters if letter.rule in (rule, None)),
    )
