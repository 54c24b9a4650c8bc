"""Command-line entry points; each module holds one command and only argument handling."""

# Nothing is re-exported: import from the modules themselves.
__all__: list[str] = []
