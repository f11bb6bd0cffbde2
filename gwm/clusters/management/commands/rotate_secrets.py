"""``gwm manage rotate_secrets``: re-encrypt every stored secret under the newest key.

Run it after every process was restarted with a new first key in
``GWM_ENCRYPTION_KEYS`` (or a new ``GWM_SECRET_KEY`` with the old one in
``GWM_SECRET_KEY_FALLBACKS``), and before the old key is dropped
(docs/keys.md). Rows go in batches, one transaction each, locked while they
are rewritten; a row already under the newest key is left alone, so a second
run rotates nothing. A secret no key reads is named by its row (never shown)
and makes the command fail. ``--check`` changes nothing and fails while
anything is left to rotate or unreadable, like ``makemigrations --check``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from gwm.clusters.models import Cluster
from gwm.kit.crypto import SecretUnreadable, reencrypt


@dataclass(frozen=True)
class SecretColumn:
    """A column holding encrypted secrets, and the column that names its row."""

    model: type[models.Model]
    column: str
    label: str
    noun: str


#: Every secret gwm stores encrypted (gwm.kit.crypto.encrypt).
SECRET_COLUMNS = (SecretColumn(Cluster, "password_encrypted", "name", "cluster"),)


@dataclass
class Tally:
    rotated: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)


def column_rotate(secret: SecretColumn, *, check: bool, batch_size: int) -> Tally:
    """Re-encrypt ``secret``'s column under the newest key (with ``check``: only count)."""
    tally = Tally()
    manager = secret.model._default_manager
    last_pk: Any = None
    while True:
        with transaction.atomic():
            rows = manager.exclude(**{secret.column: ""}).order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            if not check:
                rows = rows.select_for_update(no_key=True)
            batch = list(rows.values_list("pk", secret.label, secret.column)[:batch_size])
            for pk, label, token in batch:
                try:
                    new = reencrypt(token)
                except SecretUnreadable:
                    tally.unreadable.append(str(label))
                    continue
                if new is None:
                    tally.current += 1
                    continue
                tally.rotated += 1
                if not check:
                    manager.filter(pk=pk).update(**{secret.column: new})
        if len(batch) < batch_size:
            return tally
        last_pk = batch[-1][0]


class Command(BaseCommand):
    help = "Re-encrypt every stored secret (RAPI passwords) under the newest key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; fail if a secret is not under the newest key or unreadable",
        )
        parser.add_argument(
            "--batch-size", type=int, default=500, help="rows per transaction (500)"
        )

    def handle(self, *args: Any, check: bool, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        pending = 0
        unreadable: list[str] = []
        for secret in SECRET_COLUMNS:
            tally = column_rotate(secret, check=check, batch_size=batch_size)
            pending += tally.rotated
            unreadable += [f"{secret.noun} {label}" for label in tally.unreadable]
            where = f"{secret.model._meta.label}.{secret.column}"
            verb = "to rotate" if check else "rotated"
            self.stdout.write(
                f"{where}: {tally.rotated} {verb}, {tally.current} already under the newest key, "
                f"{len(tally.unreadable)} unreadable"
            )
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} stored secret(s) cannot be decrypted with any configured "
                f"key: {', '.join(unreadable)}. Put back the key that encrypted them, "
                "or set those passwords again."
            )
        if check and pending:
            raise CommandError(
                f"{pending} stored secret(s) are not under the newest key: "
                "run `gwm manage rotate_secrets`"
            )
