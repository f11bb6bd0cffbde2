"""Names gwm passes to Ganeti as instance, group and network names.

Ganeti names instances by host name, and group and network names end up in
paths, command lines and logs. One shared type keeps them ASCII host-name-like:
dot-separated labels of ASCII letters, digits, ``-`` and ``_``, each starting
with a letter, digit or ``_``; no empty label (so no ``..``, no leading or
trailing dot) and at most 255 characters.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
#: The pattern, also published in the OpenAPI schema (no look-arounds, so any
#: JSON Schema validator and pydantic's Rust regex engine read it alike).
GANETI_NAME_PATTERN = rf"^{_LABEL}(?:\.{_LABEL})*$"

GanetiName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=GANETI_NAME_PATTERN,
        description="an ASCII host-name-like name: labels of letters, digits, - and _ "
        "separated by single dots",
    ),
]

__all__ = ["GANETI_NAME_PATTERN", "GanetiName"]
