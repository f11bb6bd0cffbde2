"""Secrets at rest (RAPI passwords): Fernet with a key derived from the settings.

``GWM_ENCRYPTION_KEY`` (a Fernet key) wins; otherwise the key is derived from
the secret key, so rotating ``GWM_SECRET_KEY`` without setting
``GWM_ENCRYPTION_KEY`` to the old derived key makes stored passwords
unreadable (gwm then reports the cluster's credentials as needing re-entry).
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the current key."""


def _fernet() -> Fernet:
    explicit = os.environ.get("GWM_ENCRYPTION_KEY")
    if explicit:
        return Fernet(explicit.encode())
    digest = hashlib.sha256(b"gwm-secrets-at-rest:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with the current key") from None
