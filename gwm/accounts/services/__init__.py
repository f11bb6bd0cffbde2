"""The writes of the accounts domain: tokens and logins, the directory (users, groups,
roles, bindings), quotas, and the audit log. Each takes the acting user (``actor``)."""
