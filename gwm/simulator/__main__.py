"""``python -m gwm.simulator`` (until ``gwm simulator`` is wired in gwm/cli.py)."""

import typer

from gwm.simulator.cli import simulator

if __name__ == "__main__":
    typer.run(simulator)
