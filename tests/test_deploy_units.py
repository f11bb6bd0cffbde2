"""The systemd units in deploy/ start commands that exist, with options gwm accepts.

Each unit's ``ExecStart`` is run with ``--help`` added (click parses every option
before it answers ``--help``, so an unknown one fails), with the instance name and
the unit's own ``Environment=`` defaults filled in, against the installed `gwm`.
"""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
GWM = Path(sys.executable).with_name("gwm")


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_there_is_a_unit_for_api_worker_and_beat() -> None:
    assert [u.name for u in UNITS] == ["gwm-api.service", "gwm-beat.service", "gwm-worker@.service"]


@pytest.mark.parametrize("path", UNITS, ids=[u.name for u in UNITS])
def test_the_units_command_line_is_accepted(path: Path) -> None:
    service = _unit(path)["Service"]
    command = service["ExecStart"].replace("%i", "1")
    defaults = dict(
        item.split("=", 1) for item in shlex.split(service.get("Environment", "")) if "=" in item
    )
    for name, value in defaults.items():
        command = command.replace("${" + name + "}", value)
    argv = shlex.split(command)
    assert argv[0] == "/opt/gwm/.venv/bin/gwm"
    assert "$" not in command, command
    done = subprocess.run(
        [str(GWM), *argv[1:], "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert service["EnvironmentFile"] == "/etc/gwm/gwm.env"
