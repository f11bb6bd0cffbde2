"""LDAP login settings (django-auth-ldap) from the environment; off unless GWM_LDAP_URI is set.

A login's password is tried against gwm's own users first, then against the
directory (gwm.accounts.ldap.LdapBackend): gwm binds with its search account,
finds the user's entry, then binds as that entry with the password given. The
Django user is made on first login, marked as an LDAP account, and its name,
e-mail and groups are refreshed from the directory at every login.

``GWM_LDAP_URI``
    ``ldap://host:389`` or ``ldaps://host:636`` (several, space-separated, are
    tried in turn); empty or unset: LDAP is off.
``GWM_LDAP_BIND_DN``, ``GWM_LDAP_BIND_PASSWORD``
    gwm's search account; both empty: gwm searches anonymously.
``GWM_LDAP_USER_SEARCH_BASE``
    where users are searched (subtree), e.g. ``ou=people,dc=example,dc=org``; required.
``GWM_LDAP_USER_FILTER``
    the filter that finds one user, ``%(user)s`` being the (escaped) login name;
    default ``(uid=%(user)s)``; ``(sAMAccountName=%(user)s)`` for Active Directory.
``GWM_LDAP_USER_ATTR_MAP``
    Django user field = LDAP attribute, comma-separated; default
    ``first_name=givenName,last_name=sn,email=mail``. Fields: first_name,
    last_name, email.
``GWM_LDAP_GROUP_SEARCH_BASE``
    where groups are searched (subtree); empty: LDAP gives no groups. A user's
    groups are mirrored as Django groups of the same name (made when missing) at
    every login, replacing the user's other group memberships, so a role binding
    on such a group is held exactly as long as the directory says.
``GWM_LDAP_GROUP_TYPE``
    ``groupOfNames`` (``member: <user DN>``, the default) or ``posixGroup``
    (``memberUid: <uid>``).
``GWM_LDAP_START_TLS``
    true: StartTLS on an ``ldap://`` connection before any bind (default false).
``GWM_LDAP_CA_FILE``
    a PEM file of the CA that signed the directory's certificate; empty: the system's.
``GWM_LDAP_TIMEOUT_SECONDS``
    how long to wait to connect and for each answer (default 5); past it, or when
    the directory cannot be reached, a login by an LDAP user answers 503.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

LDAP_BACKEND = "gwm.accounts.ldap.LdapBackend"
_USER_FIELDS = {"first_name", "last_name", "email"}
_DEFAULT_ATTR_MAP = "first_name=givenName,last_name=sn,email=mail"
_GROUP_TYPES = {"groupofnames": "groupOfNames", "posixgroup": "posixGroup"}


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in {"", "0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be above 0")
    return value


def _attr_map(raw: str) -> dict[str, str]:
    mapping = {}
    for item in raw.split(","):
        field, eq, attribute = (part.strip() for part in item.partition("="))
        if not item.strip():
            continue
        if not (eq and attribute) or field not in _USER_FIELDS:
            raise ImproperlyConfigured(
                f"GWM_LDAP_USER_ATTR_MAP: {item!r} is not <field>=<attribute> "
                f"with a field of {sorted(_USER_FIELDS)}"
            )
        mapping[field] = attribute
    return mapping


def ldap_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """``GWM_LDAP_ENABLED`` and django-auth-ldap's ``AUTH_LDAP_*`` settings for ``env``.

    A function of the environment, so the tests can build the settings of a
    directory they start, through the same checks as a deployment.
    """
    uri = env.get("GWM_LDAP_URI", "").strip()
    if not uri:
        return {"GWM_LDAP_ENABLED": False}
    # Imported only when LDAP is on: python-ldap loads libldap, which an instance
    # without LDAP has no reason to touch.
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch, PosixGroupType

    if not all(part.startswith(("ldap://", "ldaps://")) for part in uri.split()):
        raise ImproperlyConfigured("GWM_LDAP_URI must be ldap:// or ldaps:// URLs")
    bind_dn = env.get("GWM_LDAP_BIND_DN", "").strip()
    bind_password = env.get("GWM_LDAP_BIND_PASSWORD", "")
    if bool(bind_dn) != bool(bind_password):
        raise ImproperlyConfigured(
            "set both GWM_LDAP_BIND_DN and GWM_LDAP_BIND_PASSWORD, or neither (anonymous search)"
        )
    user_base = env.get("GWM_LDAP_USER_SEARCH_BASE", "").strip()
    if not user_base:
        raise ImproperlyConfigured("GWM_LDAP_URI is set: set GWM_LDAP_USER_SEARCH_BASE too")
    user_filter = env.get("GWM_LDAP_USER_FILTER", "").strip() or "(uid=%(user)s)"
    if "%(user)s" not in user_filter:
        raise ImproperlyConfigured("GWM_LDAP_USER_FILTER must hold %(user)s")
    timeout = _seconds(env, "GWM_LDAP_TIMEOUT_SECONDS", 5.0)
    options: dict[int, Any] = {
        ldap.OPT_NETWORK_TIMEOUT: timeout,  # connecting
        ldap.OPT_TIMEOUT: timeout,  # each answer
        # Chasing a referral would bind anonymously somewhere else (Active Directory).
        ldap.OPT_REFERRALS: 0,
    }
    ca_file = env.get("GWM_LDAP_CA_FILE", "").strip()
    if ca_file:
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
        options[ldap.OPT_X_TLS_NEWCTX] = 0  # last: makes the TLS options above take effect
    values: dict[str, Any] = {
        "GWM_LDAP_ENABLED": True,
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": bind_dn,
        "AUTH_LDAP_BIND_PASSWORD": bind_password,
        "AUTH_LDAP_START_TLS": _bool(env, "GWM_LDAP_START_TLS"),
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(user_base, ldap.SCOPE_SUBTREE, user_filter),
        "AUTH_LDAP_USER_ATTR_MAP": _attr_map(
            env.get("GWM_LDAP_USER_ATTR_MAP", "").strip() or _DEFAULT_ATTR_MAP
        ),
        # Name, e-mail and groups follow the directory at every login, not just the first.
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
    }
    group_base = env.get("GWM_LDAP_GROUP_SEARCH_BASE", "").strip()
    raw_type = env.get("GWM_LDAP_GROUP_TYPE", "").strip() or "groupOfNames"
    group_type = _GROUP_TYPES.get(raw_type.lower())
    if group_type is None:
        raise ImproperlyConfigured(
            f"GWM_LDAP_GROUP_TYPE={raw_type!r} is not one of {sorted(_GROUP_TYPES.values())}"
        )
    if group_base:
        values["AUTH_LDAP_GROUP_SEARCH"] = LDAPSearch(
            group_base, ldap.SCOPE_SUBTREE, f"(objectClass={group_type})"
        )
        values["AUTH_LDAP_GROUP_TYPE"] = (
            PosixGroupType(name_attr="cn")
            if group_type == "posixGroup"
            else GroupOfNamesType(name_attr="cn")
        )
        # The user's Django groups become exactly its LDAP groups at each login.
        values["AUTH_LDAP_MIRROR_GROUPS"] = True
    return values


_values = ldap_settings(os.environ)
# The AUTH_LDAP_* names are read by django-auth-ldap from django.conf.settings only.
globals().update(_values)
GWM_LDAP_ENABLED: bool = _values["GWM_LDAP_ENABLED"]
