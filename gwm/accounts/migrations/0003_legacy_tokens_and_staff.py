"""Tokens made before peppered hashes stop working; staff users keep their power.

Before role bindings, staff users could change anything: each gets a global
``admin`` binding, so an upgrade takes nobody's power away. Tokens from before
were hashed without a pepper; they are revoked (the rows stay for the record)
and must be made again.
"""

from django.db import migrations
from django.utils import timezone


def forwards(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    Role = apps.get_model("accounts", "Role")
    RoleBinding = apps.get_model("accounts", "RoleBinding")
    User = apps.get_model("auth", "User")
    ApiToken.objects.filter(pepper=0, revoked_at__isnull=True).update(revoked_at=timezone.now())
    staff = User.objects.filter(is_staff=True, is_superuser=False)
    if staff.exists():
        # The verbs are refreshed from gwm.accounts.verbs after every migrate.
        admin, _ = Role.objects.get_or_create(name="admin", defaults={"builtin": True})
        for user in staff:
            RoleBinding.objects.get_or_create(role=admin, user=user, scope="global")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_roles_quotas_audit")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
