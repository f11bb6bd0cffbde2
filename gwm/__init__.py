"""gwm: the redesigned Ganeti Web Manager."""

__version__ = "0.1.0"
