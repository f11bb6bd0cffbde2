from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "gwm.clusters"
    label = "clusters"
    verbose_name = "Ganeti clusters"
