"""The admin's login page when the user's directory cannot be reached: a message, not a 500.

The directory's absence is played by a backend that raises what gwm's LDAP backend
raises when slapd is down (tests/accounts/test_ldap.py stops a real slapd for the API).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from gwm.accounts.services.login import IdentityUnavailable

pytestmark = pytest.mark.django_db


class DirectoryDown:
    def authenticate(self, request: Any, **credentials: Any) -> None:
        raise IdentityUnavailable("ldap://127.0.0.1:9: connection refused")


@override_settings(AUTHENTICATION_BACKENDS=["tests.accounts.test_admin_login.DirectoryDown"])
def test_the_admin_login_says_the_directory_is_down() -> None:
    page = Client().post("/admin/login/", {"username": "alice", "password": "secret-pw-1"})
    assert page.status_code == 200
    assert b"cannot be reached" in page.content


def test_the_admin_login_still_works_for_local_users(admin_user: Any) -> None:
    page = Client().post("/admin/login/", {"username": "root", "password": "pw-root-123"})
    assert page.status_code == 302
