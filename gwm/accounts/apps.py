from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "gwm.accounts"
    label = "accounts"
    verbose_name = "Accounts and tokens"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from gwm.accounts.models.builtin_roles import sync_builtin_roles

        post_migrate.connect(sync_builtin_roles, sender=self)
