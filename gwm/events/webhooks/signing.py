"""Signatures of webhook deliveries, as the Standard Webhooks specification defines them.

A receiver verifies a delivery with any Standard Webhooks library, or with a
few lines of HMAC: the signed content is ``{webhook-id}.{webhook-timestamp}.{body}``,
the key is the secret's base64 after its ``whsec_`` prefix, and the
``webhook-signature`` header carries ``v1,<base64 HMAC-SHA256>``.

The header may carry several signatures, space-separated: while a webhook's
secret is rotated, gwm signs with the new secret and the old one until the old
one expires, so a receiver holding either keeps verifying (no downtime). The
id is the event's (``evt_<seq>``), the same on every retry and replay, so a
receiver can use it to drop duplicates; the timestamp is the attempt's, so an
old captured request cannot be replayed past the receiver's tolerance.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random_source
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
VERSION = "v1"  # the scheme's identifier for symmetric (HMAC-SHA256) signatures
#: The specification asks for 24 to 64 random bytes.
SECRET_BYTES_MIN, SECRET_BYTES_MAX = 24, 64
#: How far (seconds) a delivery's timestamp may be from the verifier's clock.
DEFAULT_TOLERANCE = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def new_secret(size: int = 32) -> str:
    """A fresh signing secret: ``whsec_`` and ``size`` random bytes in base64."""
    if not SECRET_BYTES_MIN <= size <= SECRET_BYTES_MAX:
        raise ValueError(f"a secret has {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes, not {size}")
    return SECRET_PREFIX + base64.b64encode(random_source.token_bytes(size)).decode()


def _key(secret: str) -> bytes:
    # ValueError (binascii.Error) for a secret that is not base64: a stored secret is
    # gwm's own, so a broken one is a bug to see, not a delivery to sign badly.
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def _digest(secret: str, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(_key(secret), signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<signature>`` of one delivery with one secret."""
    if "." in msg_id:
        # The parts of the signed content are split on dots: an id holding one could
        # make two different deliveries sign the same bytes.
        raise ValueError(f"a webhook id may not contain '.': {msg_id!r}")
    return f"{VERSION},{base64.b64encode(_digest(secret, msg_id, timestamp, body)).decode()}"


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    signatures = [sign(secret, msg_id, timestamp, body) for secret in secrets]
    if not signatures:
        raise ValueError("a webhook is signed with at least one secret")
    return " ".join(signatures)


def signed_headers(
    secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secrets, msg_id, timestamp, body),
    }


def verify(
    secrets: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``headers`` sign ``body`` with one of ``secrets``, at a time near ``now``.

    What a receiver does: any one matching ``v1`` signature is enough (others may
    belong to a secret the receiver does not hold, or to another scheme).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(ID_HEADER, "")
    raw_timestamp = lowered.get(TIMESTAMP_HEADER, "").strip()
    offered = lowered.get(SIGNATURE_HEADER, "").split()
    if not msg_id or not offered or not raw_timestamp.isdigit():
        return False
    timestamp = int(raw_timestamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = [_digest(secret, msg_id, timestamp, body) for secret in secrets]
    for entry in offered:
        version, _, encoded = entry.partition(",")
        if version != VERSION:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        # Constant-time comparisons: timing tells a forger nothing about the signature.
        if any(hmac.compare_digest(candidate, digest) for digest in expected):
            return True
    return False
