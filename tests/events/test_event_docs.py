"""docs/events.md against the code: every event type described, every schema current.

The schemas between the markers are written by scripts/render-event-docs from
gwm.events.schemas; these tests fail when someone changes an event's shape or
adds a type without running it (and describing the type by hand).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import Client

from gwm.events.schemas import event_schemas
from gwm.events.types import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "render-event-docs"
PAGE = ROOT / "docs" / "events.md"
TYPE_ROW = re.compile(r"^\| `([a-z]+\.[a-z_]+)` \|")
BLOCK = re.compile(r"<summary><code>([a-z_.]+)</code></summary>\s*```json\n(.*?)\n```", re.S)


def _script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("render_event_docs", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _split(text: str) -> tuple[str, str]:
    """(the hand-written text with the empty markers, the generated section)."""
    script = _script()
    start, end = text.index(script.BEGIN) + len(script.BEGIN), text.index(script.END)
    return text[:start] + "\n" + text[end:], text[start:end]


def _documented(schemas_section: str) -> dict[str, Any]:
    return {name: json.loads(body) for name, body in BLOCK.findall(schemas_section)}


def test_the_generated_schemas_are_current() -> None:
    script, text = _script(), PAGE.read_text()
    assert script.rewrite(text, script.current_section()) == text, (
        "docs/events.md is stale: run scripts/render-event-docs"
    )
    # ...and that check can fail: a changed description is noticed.
    stale = text.replace("the feed cursor", "the cursor of the feed", 1)
    assert stale != text
    assert script.rewrite(stale, script.current_section()) != stale


def test_every_type_is_described_by_hand_and_has_its_schema() -> None:
    prose, generated = _split(PAGE.read_text())
    section = prose.split("\n## Event types\n", 1)[1].split("\n## ", 1)[0]
    described = [m.group(1) for line in section.splitlines() if (m := TYPE_ROW.match(line))]
    assert sorted(described) == sorted(EVENT_TYPES), "the table of event types is not every type"
    assert len(described) == len(set(described))
    assert list(_documented(generated)) == list(EVENT_TYPES)


@pytest.mark.django_db
def test_the_served_schemas_are_the_documented_ones(api: Client) -> None:
    answer = api.get("/api/v1/events/schemas")
    assert answer.status_code == 200
    served = answer.json()
    _, generated = _split(PAGE.read_text())
    assert served["types"] == _documented(generated)
    assert served["schema_version"] == event_schemas()["schema_version"]
    assert f"(`schema_version` {served['schema_version']})" in generated
    one = api.get("/api/v1/events/schemas/instance.status_changed")
    assert one.json() == served["types"]["instance.status_changed"]


def test_the_script_checks_and_rewrites_a_page(tmp_path: Path) -> None:
    text = PAGE.read_text()
    page = tmp_path / "events.md"
    prose, _ = _split(text)
    script = _script()
    page.write_text(prose.replace(script.END, "old text\n" + script.END))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), "--file", str(page), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    stale = run("--check")
    assert stale.returncode == 1 and "stale" in stale.stdout
    assert run().returncode == 0
    assert page.read_text() == text  # the same page as the one in the repository
    assert run("--check").returncode == 0
