"""What the Vibes Event API accepts: the entity rules shared by the engine and the simulator."""
