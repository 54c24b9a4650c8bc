"""Command-line entry points; each module holds one command and only argument handling."""
