"""Fingerprint spellings and TLS settings."""

from __future__ import annotations

import hashlib

import pytest

from gwm.rapi.tls import (
    TLSSettings,
    certificate_fingerprint,
    format_fingerprint,
    normalize_fingerprint,
)

DIGEST = hashlib.sha256(b"certificate").hexdigest()


@pytest.mark.parametrize(
    "spelling",
    [
        DIGEST,
        DIGEST.upper(),
        format_fingerprint(DIGEST),
        format_fingerprint(DIGEST).lower(),
        f"sha256 Fingerprint={format_fingerprint(DIGEST)}",
        f"SHA256:{DIGEST}",
        " ".join(format_fingerprint(DIGEST).split(":")),
        f"  {DIGEST}\n",
    ],
)
def test_every_usual_spelling_normalizes_to_lower_hex(spelling: str) -> None:
    assert normalize_fingerprint(spelling) == DIGEST


def test_format_is_openssls() -> None:
    text = format_fingerprint(DIGEST)
    assert text == text.upper() and len(text.split(":")) == 32


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("zz" * 32, "not hexadecimal"),
        ("ab" * 20, "SHA-1"),
        ("ab" * 31, "64 hex digits, got 62"),
        ("", "not hexadecimal"),
    ],
)
def test_bad_fingerprints_are_refused_with_a_reason(bad: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        normalize_fingerprint(bad)


def test_certificate_fingerprint_is_sha256_of_der() -> None:
    assert certificate_fingerprint(b"certificate") == DIGEST


def test_settings_modes() -> None:
    assert TLSSettings().mode == "system"
    assert TLSSettings(verify=False).mode == "insecure"
    assert TLSSettings(ca_file="ca.pem").mode == "ca_file"
    pinned = TLSSettings(fingerprint=format_fingerprint(DIGEST))
    assert pinned.mode == "fingerprint" and pinned.fingerprint == DIGEST
    with pytest.raises(RuntimeError):
        pinned.context()
    assert TLSSettings(verify=False).context().check_hostname is False
    assert TLSSettings(ca_file=None, check_hostname=False).context().check_hostname is False
