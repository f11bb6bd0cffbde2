from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "gwm.operations"
    label = "operations"
    verbose_name = "Operations and jobs"
