"""Schemathesis over every endpoint of a live gwm: no 500, no undocumented status, no
response that breaks its schema.

gwm runs as `gwm demo` does (embedded workers, a simulated cluster registered and
syncing) in a process of its own on a free port, with its own data dir. Schemathesis
then runs every phase (examples, coverage, fuzzing, and stateful, following the
OpenAPI links) with all its checks. Path parameters are drawn mostly from the names
that exist, so requests reach the handlers instead of stopping at 404.

Bounded to fit `make test`: GWM_SCHEMATHESIS_EXAMPLES examples per operation
(default 25) and GWM_SCHEMATHESIS_MAX_TIME seconds at most (default 120); the
seed is fixed (GWM_SCHEMATHESIS_SEED, default 20261201) so a failure reproduces.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

BIN = Path(sys.executable).parent
# Operations left out: the stream never ends (tests/events/test_stream.py covers it),
# and a webhook or hook URL the fuzzer makes up would have gwm's workers resolve and
# call it, off this machine (tests/events/ covers those writes with loopback receivers).
SENDS_ANYWHERE = (
    "gwm_events_api_stream_changes",
    "gwm_events_api_create_webhook",
    "gwm_events_api_update_webhook",
    "gwm_events_api_put_instance_hook",
    "gwm_events_api_put_node_hook",
    "gwm_events_api_put_job_hook",
)
EXAMPLES = int(os.environ.get("GWM_SCHEMATHESIS_EXAMPLES", "25"))
MAX_TIME = int(os.environ.get("GWM_SCHEMATHESIS_MAX_TIME", "120"))

pytestmark = pytest.mark.skipif(
    not (BIN / "st").exists(), reason="schemathesis is not installed (pip install -e .[dev])"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} ({last})")


@pytest.fixture
def live_gwm(tmp_path: Path):
    """`gwm demo` on free ports in a data dir of its own; (base URL, token, log path)."""
    data = tmp_path / "data"
    port, sim_port = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "GWM_CELERY_QUEUE"}
    }
    env.update(
        GWM_DATA_DIR=str(data),
        GWM_LOG_LEVEL="WARNING",
        GWM_SECRET_KEY="schemathesis-" * 4,
        GWM_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",  # the callbacks' closed port
    )
    log = tmp_path / "gwm.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(BIN / "gwm"),
                "demo",
                "--port",
                str(port),
                "--sim-port",
                str(sim_port),
                "--nodes",
                "3",
                "--instances",
                "12",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        credentials = data / "demo-credentials.json"
        _wait("gwm to answer", lambda: httpx.get(f"{base}/api/v1/", timeout=5).status_code == 401)
        token = json.loads(credentials.read_text())["admin"]["token"]
        spare = {
            "name": "spare",
            "rapi_url": f"https://127.0.0.1:{sim_port}",
            "username": "gwm",
            "password": "gwm",
            "tls_ca_pem": (data / "demo-simulator.pem").read_text(),
        }
        yield base, token, log, spare
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _names(client: httpx.Client, spare: dict[str, Any]) -> dict[str, list[Any]]:
    """Names that exist once the demo cluster synced, a job or two, a spare cluster."""
    response = client.post("/api/v1/clusters", json=spare)
    assert response.status_code == 201, response.text

    def synced() -> bool:
        body = client.get("/api/v1/clusters/demo").json()
        return body["status"] == "AVAILABLE" and body["counts"]["instances"] > 0

    _wait("the demo cluster's first sync", synced)

    def names(kind: str) -> list[str]:
        items = client.get(f"/api/v1/clusters/demo/{kind}?fields=name&limit=1000").json()["items"]
        return [item["name"] for item in items]

    jobs = []
    for _ in range(2):
        response = client.post(
            "/api/v1/clusters/demo/actions", json={"action": "redistribute-config"}
        )
        assert response.status_code == 202, response.text
        jobs.append(response.json()["id"])
    return {
        "cluster": ["demo"],
        "node": names("nodes"),
        "group": names("groups"),
        "network": names("networks") or ["net1"],
        "instance": names("instances"),
        "job_id": jobs,
    }


def _config(names: dict[str, list[Any]], path: Path) -> Path:
    lines = []
    for kind, values in names.items():
        lines.append(f"[dictionaries.{kind}]\nvalues = {json.dumps(values)}\n")
    lines.append("[parameters]")
    for kind in names:
        lines.append(f'"path.{kind}" = {{ dictionary = "{kind}", probability = 0.8 }}')
    lines.append('"query.ids" = { dictionary = "job_ids", probability = 0.8 }')
    lines.append('"query.timeout" = { dictionary = "timeouts", probability = 1.0 }')
    lines.append('"query.wait" = { dictionary = "timeouts", probability = 1.0 }')
    # A write's callback hook may only ever point at a closed loopback port: nothing a
    # fuzzer makes up may be resolved or called (see SENDS_ANYWHERE).
    lines.append('"query.callback_url" = { dictionary = "callbacks", probability = 1.0 }')
    lines.append("")
    ids = ",".join(str(job) for job in names["job_id"])
    lines.append(f'[dictionaries.job_ids]\nvalues = ["{ids}", "{names["job_id"][0]}"]\n')
    lines.append("[dictionaries.timeouts]\nvalues = [0, 0.05]\n")
    lines.append('[dictionaries.callbacks]\nvalues = ["http://127.0.0.1:9/callback"]\n')
    # A schema-valid request may still be refused for what the server knows: a
    # cursor it never handed out, a node that does not exist in the body, an
    # idempotency key used before with another body, a RAPI URL that does not
    # answer. Those are 400 and 422 with a problem body, documented; not a bug.
    lines.append("[checks.positive_data_acceptance]")
    lines.append('expected-statuses = ["2xx", "3xx", 400, 401, 403, 404, 409, 422]\n')
    # Writes to Ganeti are asynchronous (202 and a job): what a POST asks for
    # exists once its job ran, so follow the links the schema declares and the
    # Location headers (the job), not guesses from a request's body.
    lines.append("[phases.stateful.inference]")
    lines.append('algorithms = ["location-headers"]\n')

    # Unregistering the demo cluster would leave nothing else to test: unregister the spare.
    lines.append("[[operations]]")
    lines.append('include-path = "/api/v1/clusters/{cluster}"')
    lines.append('include-method = "DELETE"')
    lines.append('parameters = { "path.cluster" = "spare" }\n')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_schemathesis_finds_no_server_error_and_no_contract_violation(
    live_gwm, tmp_path: Path
) -> None:
    base, token, log, spare = live_gwm
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        names = _names(client, spare)
    config = _config(names, tmp_path / "schemathesis.toml")
    report = tmp_path / "report"
    started = time.monotonic()
    result = subprocess.run(
        [
            str(BIN / "st"),
            "--config-file",
            str(config),
            "run",
            f"{base}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            # These two assume a create or delete is done when it answers 2xx; a
            # Ganeti object's is done when its job is (202 and a job, as documented).
            "--exclude-checks",
            "ensure_resource_availability,use_after_free",
            *(arg for name in SENDS_ANYWHERE for arg in ("--exclude-operation-id", name)),
            "--max-examples",
            str(EXAMPLES),
            "--max-time",
            str(MAX_TIME),
            "--seed",
            os.environ.get("GWM_SCHEMATHESIS_SEED", "20261201"),
            # One worker: CPython 3.11.7 can fail ast.parse in concurrent threads
            # (gh-106905), which Hypothesis calls while describing strategies.
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-shrink",
            "--report",
            "ndjson",
            "--report-dir",
            str(report),
            "--output-truncate",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=MAX_TIME + 240,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    print(output[-6000:])
    sent = sum(
        line.count('"request":{') for path in report.glob("*.ndjson") for line in path.open()
    )
    print(f"schemathesis took {elapsed:.0f} s and recorded {sent} requests")
    server_log = log.read_text()[-4000:] if log.exists() else ""
    assert result.returncode == 0, (
        f"schemathesis found problems:\n{output[-12000:]}\n--- gwm log ---\n{server_log}"
    )
    assert "generated" in output
