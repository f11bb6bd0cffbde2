"""Webhook signatures: the Standard Webhooks scheme, rotation, tampering, replay."""

from __future__ import annotations

import base64
import hmac
import re

import pytest

from gwm.events.webhooks.signing import (
    new_secret,
    sign,
    signature_header,
    signed_headers,
    verify,
)

# The reference vector that Standard Webhooks' libraries test against.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_800_000_000
BODY = b'{"id":"evt_7","type":"instance.status_changed"}'


def by_hand(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The scheme written out with the standard library alone, as a receiver would."""
    key = base64.b64decode(secret[len("whsec_") :])
    digest = hmac.new(key, msg_id.encode() + b"." + str(timestamp).encode() + b"." + body, "sha256")
    return "v1," + base64.b64encode(digest.digest()).decode()


def headers_for(secrets: list[str], msg_id: str = "evt_7", timestamp: int = NOW) -> dict[str, str]:
    return signed_headers(secrets, msg_id, timestamp, BODY)


def test_the_reference_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    assert verify([VECTOR_SECRET], headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_a_fresh_secret_signs_as_computed_by_hand() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret
    assert sign(secret, "evt_7", NOW, BODY) == by_hand(secret, "evt_7", NOW, BODY)
    assert sign(secret, "evt_7", NOW, BODY) != sign(new_secret(), "evt_7", NOW, BODY)


@pytest.mark.parametrize("size", [23, 65])
def test_secret_sizes_outside_the_specification_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="24 to 64"):
        new_secret(size)
    assert len(base64.b64decode(new_secret(24)[6:])) == 24
    assert len(base64.b64decode(new_secret(64)[6:])) == 64


def test_the_headers_carry_one_signature_per_secret() -> None:
    old, new = new_secret(), new_secret()
    headers = headers_for([new, old])
    assert headers["webhook-id"] == "evt_7"
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"] == (
        f"{by_hand(new, 'evt_7', NOW, BODY)} {by_hand(old, 'evt_7', NOW, BODY)}"
    )
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], "evt_7", NOW, BODY)


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new, stranger = new_secret(), new_secret(), new_secret()
    headers = headers_for([new, old])
    assert verify([old], headers, BODY, now=NOW)
    assert verify([new], headers, BODY, now=NOW)
    assert not verify([stranger], headers, BODY, now=NOW)
    # The receiver may hold both while it rotates; a sender still on the old one verifies.
    assert verify([new, old], headers_for([old]), BODY, now=NOW)


def test_one_matching_signature_among_several_is_enough() -> None:
    secret = new_secret()
    good = sign(secret, "evt_7", NOW, BODY)
    forged = "v1," + base64.b64encode(b"\0" * 32).decode()
    headers = headers_for([secret])
    headers["webhook-signature"] = f"v1a,c29tZXRoaW5nIGVsc2U= {forged} v1,not-base64! {good}"
    assert verify([secret], headers, BODY, now=NOW)
    headers["webhook-signature"] = f"v1a,c29tZXRoaW5nIGVsc2U= {forged} v1,not-base64!"
    assert not verify([secret], headers, BODY, now=NOW)


def test_tampering_with_body_id_or_timestamp_fails() -> None:
    secret = new_secret()
    headers = headers_for([secret])
    assert verify([secret], headers, BODY, now=NOW)
    assert not verify([secret], headers, BODY.replace(b"evt_7", b"evt_8"), now=NOW)
    assert not verify([secret], {**headers, "webhook-id": "evt_8"}, BODY, now=NOW)
    assert not verify([secret], {**headers, "webhook-timestamp": str(NOW + 1)}, BODY, now=NOW)


def test_a_timestamp_outside_the_tolerance_fails() -> None:
    secret = new_secret()
    headers = headers_for([secret])
    assert verify([secret], headers, BODY, now=NOW + 300)
    assert verify([secret], headers, BODY, now=NOW - 300)
    assert not verify([secret], headers, BODY, now=NOW + 301)
    assert not verify([secret], headers, BODY, now=NOW - 301)
    assert verify([secret], headers, BODY, now=NOW + 3000, tolerance=3600)


def test_missing_or_malformed_headers_fail() -> None:
    secret = new_secret()
    headers = headers_for([secret])
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert not verify([secret], {k: v for k, v in headers.items() if k != name}, BODY, now=NOW)
    assert not verify([secret], {**headers, "webhook-timestamp": "soon"}, BODY, now=NOW)
    # Header names are case-insensitive in HTTP.
    assert verify([secret], {k.title(): v for k, v in headers.items()}, BODY, now=NOW)


def test_an_id_with_a_dot_cannot_be_signed() -> None:
    # Id "a.1" at time 2 with body "x", and id "a" at time 1 with body "2.x", sign "a.1.2.x".
    with pytest.raises(ValueError, match=re.escape("'.'")):
        sign(new_secret(), "evt.7", NOW, BODY)
