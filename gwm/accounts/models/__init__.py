"""The accounts tables: tokens and profiles, roles and bindings, quotas, the audit log."""

from gwm.accounts.models.audit import AuditEntry
from gwm.accounts.models.quotas import Quota
from gwm.accounts.models.roles import Role, RoleBinding, Scope
from gwm.accounts.models.tokens import AccountSource, ApiToken, LoginFailure, Profile

__all__ = [
    "AccountSource",
    "ApiToken",
    "AuditEntry",
    "LoginFailure",
    "Profile",
    "Quota",
    "Role",
    "RoleBinding",
    "Scope",
]
