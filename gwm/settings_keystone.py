"""Keystone token settings from the environment; off unless KEYSTONE_URL is set.

gwm validates a caller's ``X-Auth-Token`` with Keystone's identity API v3
(``GET /v3/auth/tokens``), authenticating itself with a token it gets by
password (``POST /v3/auth/tokens``) as a service user: Keystone's static admin
token is meant for bootstrapping only, so gwm does not use one. The service
user needs a role that Keystone's policy lets validate others' tokens
(``service`` or ``admin``). The mapping to users and groups is
gwm.accounts.keystone; docs/permissions.md describes it.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be above 0")
    return value


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


# The identity endpoint without /v3 (https://keystone.example:5000); empty: Keystone is off
# and an X-Auth-Token header is ignored.
KEYSTONE_URL = os.environ.get("KEYSTONE_URL", "").strip().rstrip("/")
# gwm's own service user, authenticated by password and scoped to a project.
GWM_KEYSTONE_USER = os.environ.get("GWM_KEYSTONE_USER", "")
GWM_KEYSTONE_PASSWORD = os.environ.get("GWM_KEYSTONE_PASSWORD", "")
GWM_KEYSTONE_USER_DOMAIN = os.environ.get("GWM_KEYSTONE_USER_DOMAIN", "Default")
GWM_KEYSTONE_PROJECT = os.environ.get("GWM_KEYSTONE_PROJECT", "service")
GWM_KEYSTONE_PROJECT_DOMAIN = os.environ.get("GWM_KEYSTONE_PROJECT_DOMAIN", "Default")
# "<project>:<role>=<gwm group>,..."; "*" for any project or any role.
GWM_KEYSTONE_ROLE_GROUPS = os.environ.get("GWM_KEYSTONE_ROLE_GROUPS", "")
# How long a validated token is believed without asking again (never past its expiry):
# a token revoked in Keystone keeps working in gwm for at most this long.
GWM_KEYSTONE_CACHE_SECONDS = _int("GWM_KEYSTONE_CACHE_SECONDS", 300)
GWM_KEYSTONE_TIMEOUT_SECONDS = _float("GWM_KEYSTONE_TIMEOUT_SECONDS", 5.0)
# A PEM file of the CA that signed Keystone's certificate; empty: the system's CAs.
GWM_KEYSTONE_CA_FILE = os.environ.get("GWM_KEYSTONE_CA_FILE", "")

if KEYSTONE_URL:
    if not KEYSTONE_URL.startswith(("https://", "http://")):
        raise ImproperlyConfigured("KEYSTONE_URL must be an http(s) URL")
    if not (GWM_KEYSTONE_USER and GWM_KEYSTONE_PASSWORD):
        raise ImproperlyConfigured(
            "KEYSTONE_URL is set: set GWM_KEYSTONE_USER and GWM_KEYSTONE_PASSWORD too"
        )
    if GWM_KEYSTONE_CACHE_SECONDS < 0:
        raise ImproperlyConfigured("GWM_KEYSTONE_CACHE_SECONDS must be 0 or more")
