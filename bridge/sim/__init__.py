"""A local simulator of the Vibes Event API, for demos, tests and load runs.

``vibes-bridge sim`` (``bridge.commands.sim_cmd``) starts it; docs/simulator.md
describes its behaviour. Modules by role: ``app`` the HTTP handlers, ``state``
what it records, ``faults`` and ``ratelimit`` how it misbehaves, ``auth`` the
Basic-auth check, ``protocol`` requests too broken to reach a handler,
``server`` start and stop. Of the bridge it imports only ``bridge.vibes`` (the
wire facts it shares with the delivery client), and only the commands import it.
"""

from bridge.sim.app import Simulator, build_app
from bridge.sim.config import SimConfig
from bridge.sim.faults import Fault, FaultSettings, SettingsError
from bridge.sim.server import run, serve

__all__ = [
    "Fault",
    "FaultSettings",
    "SettingsError",
    "SimConfig",
    "Simulator",
    "build_app",
    "run",
    "serve",
]
