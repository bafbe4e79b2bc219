"""The ``smartmkt`` command line (Typer + rich)."""
