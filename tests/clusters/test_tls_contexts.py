"""One SSL context per trust, kept for the process: a sync worker builds a RAPI client
per cluster per round, and a context costs 1 ms (CA file) to 65 ms (system CAs)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from gwm.ganeti.connect import build_client
from gwm.rapi.tls import TLSSettings, pinned_context
from tests.rapi.certs import make_cert


def _context_of(client: object) -> ssl.SSLContext:
    verify = client.config.client_options(None)["verify"]  # type: ignore[attr-defined]
    assert isinstance(verify, ssl.SSLContext)
    return verify


@pytest.mark.django_db
def test_clients_for_the_same_ca_share_one_context(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_DIR = tmp_path
    first, second = make_cert(tmp_path, "one"), make_cert(tmp_path, "two")
    clients = [
        build_client(rapi_url="https://c1:5080", username="", password="", tls_ca_pem=pem)
        for pem in (first.pem, first.pem, second.pem)
    ]
    contexts = [_context_of(client) for client in clients]
    assert contexts[0] is contexts[1]
    assert contexts[2] is not contexts[0]
    assert contexts[0].cert_store_stats()["x509"] == contexts[2].cert_store_stats()["x509"] == 1
    for client in clients:
        client.close()


def test_a_rewritten_ca_file_gets_a_new_context(tmp_path: Path) -> None:
    first, second = make_cert(tmp_path, "one"), make_cert(tmp_path, "two")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(first.pem)
    before = TLSSettings(ca_file=str(ca_file)).context()
    assert TLSSettings(ca_file=str(ca_file)).context() is before
    ca_file.write_text(second.pem)
    stat = ca_file.stat()
    os.utime(ca_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = TLSSettings(ca_file=str(ca_file)).context()
    assert after is not before
    assert after.cert_store_stats()["x509"] == 1


def test_settings_that_trust_differently_get_their_own_contexts(tmp_path: Path) -> None:
    cert = make_cert(tmp_path, "one")
    checked = TLSSettings(ca_file=str(cert.cert_file)).context()
    unchecked = TLSSettings(ca_file=str(cert.cert_file), check_hostname=False).context()
    assert (checked.check_hostname, unchecked.check_hostname) == (True, False)
    insecure = TLSSettings(verify=False).context()
    assert insecure.verify_mode == ssl.CERT_NONE
    assert TLSSettings(verify=False).context() is insecure


def test_a_pin_keeps_one_context_per_certificate(tmp_path: Path) -> None:
    one, two = make_cert(tmp_path, "one"), make_cert(tmp_path, "two")
    assert pinned_context(one.der) is pinned_context(one.der)
    assert pinned_context(two.der) is not pinned_context(one.der)
