from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "gwm.accounts"
    label = "accounts"
    verbose_name = "Accounts and tokens"
