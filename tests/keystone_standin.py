"""A stand-in Keystone: the identity API v3 token calls gwm makes, over real HTTP.

It serves ``POST /v3/auth/tokens`` (password auth, project scope; the token in
``X-Subject-Token``), ``GET /v3/auth/tokens`` (validate: ``X-Auth-Token`` must be
a live token holding ``admin`` or ``service``; ``X-Subject-Token`` is the token
asked about, 404 when unknown, revoked or expired) and ``DELETE`` (revoke), on
127.0.0.1 in a thread. As in Keystone, a token's roles are read at validation,
so a role changed after issue shows in the next validation. Tests drive it
directly too: issue, revoke, set roles, and count the requests it answered.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKENS = "/v3/auth/tokens"
VALIDATORS = frozenset({"admin", "service"})  # roles Keystone's policy lets validate others'


@dataclass
class _User:
    id: str
    name: str
    password: str
    domain: str


@dataclass
class _Token:
    user: _User
    project: str | None
    expires_at: datetime
    issued_at: datetime
    revoked: bool = False


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


class KeystoneStandin:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, _User] = {}
        self._roles: dict[tuple[str, str], set[str]] = {}  # (user, project) -> roles
        self._tokens: dict[str, _Token] = {}
        self.requests: Counter[str] = Counter()  # "GET /v3/auth/tokens" -> how many
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what a test does ---------------------------------------------------------------

    def add_user(self, name: str, password: str = "pw", domain: str = "Default") -> None:
        with self._lock:
            self._users[name] = _User(secrets.token_hex(16), name, password, domain)

    def set_roles(self, user: str, project: str, roles: set[str]) -> None:
        with self._lock:
            self._roles[(user, project)] = set(roles)

    def issue(self, user: str, project: str | None = None, lifetime: float = 3600) -> str:
        """A token for ``user`` (already expired when ``lifetime`` is negative)."""
        now = datetime.now(UTC)
        token = "gAAAAA" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Token(
                self._users[user], project, now + timedelta(seconds=lifetime), now
            )
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens[token].revoked = True

    def count(self, request: str) -> None:
        with self._lock:
            self.requests[request] += 1

    def validations(self) -> int:
        return self.requests[f"GET {TOKENS}"]

    def logins(self) -> int:
        return self.requests[f"POST {TOKENS}"]

    # -- what the handler asks ----------------------------------------------------------

    def live(self, token: str | None) -> _Token | None:
        with self._lock:
            found = self._tokens.get(token or "")
        if found is None or found.revoked or found.expires_at <= datetime.now(UTC):
            return None
        return found

    def roles_of(self, token: _Token) -> set[str]:
        if token.project is None:
            return set()
        with self._lock:
            return set(self._roles.get((token.user.name, token.project), ()))

    def login(self, body: Any) -> str | None:
        try:
            identity = body["auth"]["identity"]
            given = identity["password"]["user"]
            project = body["auth"].get("scope", {}).get("project", {}).get("name")
        except (KeyError, TypeError, AttributeError):
            return None
        user = self._users.get(given.get("name", ""))
        if (
            "password" not in identity.get("methods", ())
            or user is None
            or given.get("password") != user.password
            or given.get("domain", {}).get("name") != user.domain
        ):
            return None
        with self._lock:
            roles = self._roles.get((user.name, project or ""))
        if project is not None and not roles:
            return None  # Keystone scopes no token to a project the user has no role in
        return self.issue(user.name, project)

    def body_of(self, token: _Token) -> dict[str, Any]:
        domain = {"id": token.user.domain.lower(), "name": token.user.domain}
        body: dict[str, Any] = {
            "methods": ["password"],
            "user": {
                "domain": domain,
                "id": token.user.id,
                "name": token.user.name,
                "password_expires_at": None,
            },
            "audit_ids": [secrets.token_urlsafe(16)],
            "expires_at": _stamp(token.expires_at),
            "issued_at": _stamp(token.issued_at),
        }
        if token.project is not None:
            body["project"] = {"domain": domain, "id": f"id-{token.project}", "name": token.project}
            body["is_domain"] = False
            body["roles"] = [
                {"id": f"id-{role}", "name": role} for role in sorted(self.roles_of(token))
            ]
        return {"token": body}


def _handler_for(keystone: KeystoneStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows what fails

        def _answer(
            self, status: int, body: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, title: str, message: str) -> None:
            self._answer(status, {"error": {"code": status, "title": title, "message": message}})

        def _route(self) -> bool:
            path = self.path.split("?", 1)[0]
            keystone.count(f"{self.command} {path}")
            if path != TOKENS:
                self._error(404, "Not Found", "no such resource")
                return False
            return True

        def _caller_may_validate(self) -> bool:
            caller = keystone.live(self.headers.get("X-Auth-Token"))
            if caller is None:
                self._error(
                    401, "Unauthorized", "The request you have made requires authentication."
                )
                return False
            if not keystone.roles_of(caller) & VALIDATORS:
                self._error(
                    403, "Forbidden", "You are not authorized to perform the requested action."
                )
                return False
            return True

        def do_POST(self) -> None:
            if not self._route():
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._error(400, "Bad Request", "the body is not JSON")
                return
            token = keystone.login(body)
            if token is None:
                self._error(
                    401, "Unauthorized", "The request you have made requires authentication."
                )
                return
            found = keystone.live(token)
            assert found is not None
            self._answer(201, keystone.body_of(found), {"X-Subject-Token": token})

        def do_GET(self) -> None:
            if not self._route() or not self._caller_may_validate():
                return
            subject = self.headers.get("X-Subject-Token")
            found = keystone.live(subject)
            if found is None:
                self._error(404, "Not Found", f"Could not find token: {subject}.")
                return
            self._answer(200, keystone.body_of(found), {"X-Subject-Token": subject or ""})

        def do_DELETE(self) -> None:
            if not self._route() or not self._caller_may_validate():
                return
            subject = self.headers.get("X-Subject-Token") or ""
            if keystone.live(subject) is None:
                self._error(404, "Not Found", f"Could not find token: {subject}.")
                return
            keystone.revoke(subject)
            self._answer(204)

    return Handler
