"""Secrets at rest (RAPI passwords): Fernet, with several keys accepted (docs/keys.md).

The keys, newest first; the first encrypts, every one decrypts:

* ``settings.GWM_ENCRYPTION_KEYS`` (from ``GWM_ENCRYPTION_KEYS``, or the older
  single ``GWM_ENCRYPTION_KEY``), where the word ``from-secret-key`` stands
  for the keys below, so a deployment can move from those to its own keys
  without losing a password;
* without them, one key derived from ``settings.SECRET_KEY`` and then one from
  each of ``settings.SECRET_KEY_FALLBACKS``: rotating ``GWM_SECRET_KEY`` with
  the old one kept in ``GWM_SECRET_KEY_FALLBACKS`` loses nothing.

The keys are built on every call, not cached: building three costs about
12 µs, decrypting about 30 µs, against a RAPI round of milliseconds; and a
test (or ``override_settings``) that changes the settings is seen at once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

#: In GWM_ENCRYPTION_KEYS: the keys derived from SECRET_KEY and its fallbacks.
FROM_SECRET_KEY = "from-secret-key"

_NOT_A_KEY = (
    "is not a Fernet key (44 characters of url-safe base64, 32 bytes; make one with "
    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
)


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any of the configured keys."""


def encryption_keys_check(keys: Iterable[str], *, name: str) -> list[str]:
    """``keys`` if each one is a Fernet key (or ``from-secret-key``); else ImproperlyConfigured.

    The message names the setting and the key's position, never the key.
    """
    checked = list(keys)
    for position, key in enumerate(checked, start=1):
        if key == FROM_SECRET_KEY:
            continue
        try:
            Fernet(key.encode())
        except ValueError:
            raise ImproperlyConfigured(f"{name}: key {position} {_NOT_A_KEY}") from None
    return checked


def _derived(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"gwm-secrets-at-rest:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> list[Fernet]:
    derived = [_derived(key) for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]]
    explicit = encryption_keys_check(settings.GWM_ENCRYPTION_KEYS, name="GWM_ENCRYPTION_KEYS")
    if not explicit:
        return derived
    keys: list[Fernet] = []
    for key in explicit:
        keys.extend(derived if key == FROM_SECRET_KEY else [Fernet(key.encode())])
    return keys


def _fernet() -> MultiFernet:
    return MultiFernet(_keys())


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "stored secret cannot be decrypted with any configured key"
        ) from None


def reencrypt(token: str) -> str | None:
    """``token`` under the newest key, or None when it already is (nothing to rotate).

    SecretUnreadable when no key reads it.
    """
    keys = _keys()
    try:
        keys[0].decrypt(token.encode())
    except InvalidToken:
        pass
    else:
        return None
    try:
        return MultiFernet(keys).rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "stored secret cannot be decrypted with any configured key"
        ) from None
