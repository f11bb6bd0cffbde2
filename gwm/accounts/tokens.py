"""The text of an API token, and the keyed hash gwm keeps instead of it.

A token reads ``gwm_<id><secret><check>``: the ``gwm_`` prefix and a fixed
length let secret scanners spot one; ``<id>`` (12 characters) finds its row
without the secret; ``<check>`` (6 characters, a CRC-32 of the rest) lets a
scanner, or gwm, tell a token from a typo without asking the database. All
three parts are base62, so a token survives a double click and a URL.

Only ``HMAC-SHA256(pepper, token)`` is stored, under the number of the pepper
that made it. Peppers live in the server's settings (``GWM_TOKEN_PEPPERS``),
never in the database: a stolen copy of the database holds no usable hash.
Several numbered peppers are accepted at once; new tokens use the newest, so a
pepper is rotated by adding a newer one and, once its tokens are gone,
dropping the old.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from typing import NamedTuple

from django.conf import settings

PREFIX = "gwm_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH, SECRET_LENGTH, CHECK_LENGTH = 12, 32, 6
LENGTH = len(PREFIX) + ID_LENGTH + SECRET_LENGTH + CHECK_LENGTH


class TokenText(NamedTuple):
    key_id: str
    plaintext: str


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _check(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECK_LENGTH)


def new_token() -> TokenText:
    key_id = "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))
    secret = "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))
    body = PREFIX + key_id + secret
    return TokenText(key_id, body + _check(body))


def key_id_of(plaintext: str) -> str | None:
    """The id in ``plaintext`` if it is shaped like a gwm token with a good checksum."""
    if len(plaintext) != LENGTH or not plaintext.startswith(PREFIX):
        return None
    body, check = plaintext[:-CHECK_LENGTH], plaintext[-CHECK_LENGTH:]
    if not hmac.compare_digest(_check(body), check):
        return None
    return body[len(PREFIX) : len(PREFIX) + ID_LENGTH]


def peppers() -> dict[int, str]:
    return dict(settings.GWM_TOKEN_PEPPERS)


def newest_pepper() -> int:
    return max(peppers())


def token_hash(plaintext: str, pepper: int) -> str | None:
    """The stored form of ``plaintext`` under pepper number ``pepper``; None if unknown."""
    key = peppers().get(pepper)
    if key is None:
        return None
    return hmac.new(key.encode(), plaintext.encode(), hashlib.sha256).hexdigest()
