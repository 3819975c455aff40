"""The ``retbench`` command line: a thin click layer over the library (``main`` is the console
script, ``cli`` the click group plugins add commands to)."""

from retbench.cli.commands import cli, main

__all__ = ["cli", "main"]
