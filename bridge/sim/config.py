"""The simulator's start-up configuration, separate from the command line.

Keeping it a plain value lets tests and other tools (a demo script, a pytest
fixture in-process) build a simulator without going through click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from bridge.sim.callbacks import CallbackKnobs
from bridge.sim.faults import FaultSettings

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_COMPANY_KEY: Final = "demo"
DEFAULT_USERNAME: Final = "demo"
DEFAULT_PASSWORD: Final = "demo"  # a documented local demo credential, not a secret
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
DEFAULT_MAX_EVENTS: Final = 100_000
DEFAULT_MAX_EVENT_IDS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything fixed for the life of one simulator process."""

    host: str = DEFAULT_HOST
    port: int = 0
    company_keys: tuple[str, ...] = (DEFAULT_COMPANY_KEY,)
    username: str = DEFAULT_USERNAME
    password: str = field(default=DEFAULT_PASSWORD, repr=False)
    # Company keys with a user of their own: key -> (username, password). A key here
    # accepts only its own pair; every other key accepts username/password above.
    company_users: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_events: int = DEFAULT_MAX_EVENTS
    max_event_ids: int = DEFAULT_MAX_EVENT_IDS
    seed: int | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)
    callbacks: CallbackKnobs = field(default_factory=CallbackKnobs)
