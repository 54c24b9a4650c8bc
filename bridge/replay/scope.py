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

from collections.abc import Collection

from bridge.service.dead_letters import RULE, DeadLetter
from bridge.service.stages import PreparedRecord


def narrow_to_rule(
    prepared: PreparedRecord, rule: str | None, current_rules: Collection[str]
) -> PreparedRecord:
    """``prepared`` with only ``rule``'s events and failures, when that rule still exists."""
    if rule is None or rule not in current_rules:
        return prepared
    events = tuple(event for event in prepared.events if event.rule == rule)
    letters = tuple(letter for letter in prepared.dead_letters if _rule_of(letter) in (rule, None))
    return PreparedRecord(prepared.record, events, letters, bool(events or letters))


def _rule_of(letter: DeadLetter) -> str | None:
    for name, value in letter.headers:
        if name == RULE and value is not None:
            return value.decode("utf-8", "replace")
    return None
