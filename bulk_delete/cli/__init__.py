"""The command line: the only layer that prints and runs the event loop."""

from .main import main

__all__ = ["main"]
