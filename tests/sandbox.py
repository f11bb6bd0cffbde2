"""Where the real Ganeti sandbox is: .sandbox/ganeti.env, or the same variables in the env."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_FILE = Path(__file__).resolve().parents[1] / ".sandbox" / "ganeti.env"
KEYS = (
    "GWM_SANDBOX_RAPI_URL",
    "GWM_SANDBOX_WRITE_USER",
    "GWM_SANDBOX_WRITE_PASSWORD",
    "GWM_SANDBOX_READ_USER",
    "GWM_SANDBOX_READ_PASSWORD",
    "GWM_SANDBOX_CA_FILE",
    "GWM_SANDBOX_CLUSTER_NAME",
    "GWM_SANDBOX_NODE",
    # the second node (scripts/ganeti-sandbox brings up two); an env file without it
    # is from a one-node sandbox: re-run `scripts/ganeti-sandbox up`
    "GWM_SANDBOX_NODE2",
)


def sandbox_env() -> dict[str, str]:
    """The sandbox's connection details; fails (never skips) when it is not up."""
    values = {key: os.environ[key] for key in KEYS if os.environ.get(key)}
    if len(values) < len(KEYS) and ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key in KEYS:
                values.setdefault(key, value)
    missing = [key for key in KEYS if key not in values]
    if missing:
        pytest.fail(
            "the real Ganeti sandbox is not up (missing "
            + ", ".join(missing)
            + "): run `scripts/ganeti-sandbox up` (make test does it)",
            pytrace=False,
        )
    return values
