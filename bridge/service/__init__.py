"""The delivery service: ``vibes-bridge run`` and ``replay``, the one package that wires the others.

Its modules are imported by name (``bridge.service.runner``, ...); nothing is
re-exported here, so importing one part never loads the listeners or Kafka.
"""

# Nothing is re-exported: import from the modules themselves.
__all__: list[str] = []
