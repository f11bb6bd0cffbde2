"""``python -m gwm.simulator``: serve one simulated cluster, as ``gwm simulator`` does.

Both run ``cli.simulator``; gwm/server_cli.py registers it as ``gwm simulator``.
"""

import typer

from gwm.simulator.cli import simulator

if __name__ == "__main__":
    typer.run(simulator)
