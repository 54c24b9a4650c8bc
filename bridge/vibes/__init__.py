"""What the Vibes Event API accepts: the entity rules shared by the engine and the simulator."""

# Nothing is re-exported: import from the modules themselves.
__all__: list[str] = []
