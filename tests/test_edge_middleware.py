"""What the served application's two middleware lists give, over real HTTP.

/api/ runs GWM_API_MIDDLEWARE (gwm.middleware.EdgeMiddleware alone: security
headers, URL rules, X-Frame-Options and problem bodies, on the event loop);
everything else, the admin, the full MIDDLEWARE with sessions and CSRF. The
Django test client always runs the full list, so only a real server shows
the /api/ one (tests/events/live_gwm.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from gwm.accounts.services.tokens import token_create
from tests.events.live_gwm import LiveGwm, serving

pytestmark = pytest.mark.django_db(transaction=True)

PROBLEM = "application/problem+json"
#: What every response carried before the API had its own middleware list.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
}


@pytest.fixture
def live(transactional_db: None) -> Iterator[LiveGwm]:
    with serving() as running:
        yield running


@pytest.fixture
def token(admin_user: Any) -> str:
    return token_create(actor=None, user=admin_user, name="edge")[1]


def _assert_security_headers(response: Any, *, frame_options: bool = True) -> None:
    expected: dict[str, str | None] = dict(SECURITY_HEADERS)
    if not frame_options:
        # A problem body made by ProblemMiddleware replaces the response that
        # X-Frame-Options was set on (it was so before the API had its own list too).
        expected["x-frame-options"] = None
    got = {name: response.headers.get(name) for name in SECURITY_HEADERS}
    assert got == expected, response.headers


def test_the_api_runs_the_short_list_and_the_site_the_full_one() -> None:
    # What the tests below tell apart: they would pass alike if both were the same list.
    assert settings.GWM_API_MIDDLEWARE == ["gwm.middleware.EdgeMiddleware"]
    assert "django.contrib.sessions.middleware.SessionMiddleware" in settings.MIDDLEWARE


def test_an_api_answer_has_the_security_headers_and_no_session(live: LiveGwm, token: str) -> None:
    with live.client(token) as http:
        response = http.get("/api/v1/clusters")
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next": None}
    _assert_security_headers(response)
    assert "set-cookie" not in response.headers
    assert "cookie" not in response.headers.get("vary", "").lower()


def test_a_refused_api_call_has_the_security_headers_too(live: LiveGwm) -> None:
    with live.client() as http:
        response = http.get("/api/v1/clusters")
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    _assert_security_headers(response)
    assert "set-cookie" not in response.headers


def test_an_unknown_api_path_is_a_404_problem(live: LiveGwm, token: str) -> None:
    with live.client(token) as http:
        response = http.get("/api/v1/no-such-thing")
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"], body["instance"]) == (
        404,
        "not_found",
        "/api/v1/no-such-thing",
    )
    assert body["title"] and body["type"]
    _assert_security_headers(response, frame_options=False)


def test_a_wrong_method_is_a_405_problem_with_allow(live: LiveGwm, token: str) -> None:
    with live.client(token) as http:
        allowed = http.get("/api/v1/clusters")
        response = http.request("PATCH", "/api/v1/clusters")
    assert allowed.status_code == 200, allowed.text  # the path exists: the method is wrong
    assert response.status_code == 405, response.text
    assert response.headers["content-type"] == PROBLEM
    allow = {method.strip() for method in response.headers["allow"].split(",")}
    assert "GET" in allow and "PATCH" not in allow, allow
    body = response.json()
    assert (body["status"], body["code"]) == (405, "method_not_allowed")
    assert "PATCH" in body["detail"]
    _assert_security_headers(response, frame_options=False)


def test_the_admin_login_page_still_has_sessions_and_csrf(live: LiveGwm) -> None:
    with live.client() as http:
        response = http.get("/admin/login/")
    assert response.status_code == 200, response.text
    assert settings.CSRF_COOKIE_NAME in response.cookies
    assert 'name="csrfmiddlewaretoken"' in response.text
    assert "cookie" in response.headers.get("vary", "").lower()
    _assert_security_headers(response)
