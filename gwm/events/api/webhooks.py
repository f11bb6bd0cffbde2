"""Placeholder: being written (issue 10)."""

from __future__ import annotations

from ninja import Router

router = Router()
