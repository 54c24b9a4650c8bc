"""vibes-bridge: Kafka order and shipment events to the Vibes Event API.

The data path reads in one direction, one package per stage:

    records (Kafka edge) -> codecs (decode) -> mapping (match and map, validate)
        -> delivery (HTTP edge) -> commit or dead-letter

``config`` loads and checks the YAML contract; ``commands`` holds the
command-line entry points; ``sim`` is the Vibes API simulator.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
